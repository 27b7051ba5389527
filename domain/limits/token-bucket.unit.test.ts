import { describe, expect, it } from "vitest";
import { levelAt, perSecondBucket, reserveToken, waitForToken, type BucketLevel } from "./token-bucket.js";

describe("token bucket", () => {
  const bucket = { capacity: 3, refillPerSecond: 10 };

  it("starts full and serves a burst of its capacity at once", () => {
    let level: BucketLevel | undefined;
    const waits = [];
    for (let i = 0; i < 3; i++) {
      const r = reserveToken(bucket, level, 0);
      level = r.level;
      waits.push(r.waitMs);
    }
    expect(waits).toEqual([0, 0, 0]);
  });

  it("queues callers beyond the burst at the refill rate, in order", () => {
    let level: BucketLevel | undefined;
    const waits = [];
    for (let i = 0; i < 6; i++) {
      const r = reserveToken(bucket, level, 0);
      level = r.level;
      waits.push(r.waitMs);
    }
    expect(waits).toEqual([0, 0, 0, 100, 200, 300]);
  });

  it("refills with time, never above its capacity", () => {
    expect(levelAt(bucket, { tokens: -2, atMs: 0 }, 500).tokens).toBe(3);
    expect(levelAt(bucket, { tokens: 0, atMs: 0 }, 150).tokens).toBeCloseTo(1.5);
    expect(waitForToken(bucket, { tokens: 0.5, atMs: 0 })).toBe(50);
  });

  it("holds a long run to its rate: 20 s at 50/s admits 50 × 20 plus the burst", () => {
    const limit = perSecondBucket(50);
    let level: BucketLevel | undefined;
    let admitted = 0;
    for (let now = 0; now < 20_000; now += 1) {
      for (;;) {
        const current = levelAt(limit, level, now);
        if (waitForToken(limit, current) > 0) break;
        level = reserveToken(limit, current, now).level;
        admitted++;
      }
    }
    expect(admitted).toBeGreaterThanOrEqual(1000);
    expect(admitted).toBeLessThanOrEqual(1000 + limit.capacity);
  });
});
