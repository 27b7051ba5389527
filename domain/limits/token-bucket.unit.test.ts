import { describe, expect, it } from "vitest";
import { levelAt, perSecondBucket, waitForToken, type BucketLevel } from "./token-bucket.js";

describe("token bucket", () => {
  const bucket = { capacity: 3, refillPerSecond: 10 };

  it("starts full: a burst of its capacity is there at once", () => {
    expect(levelAt(bucket, undefined, 0)).toEqual({ tokens: 3, atMs: 0 });
    expect(waitForToken(bucket, levelAt(bucket, undefined, 0))).toBe(0);
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
        level = { tokens: current.tokens - 1, atMs: now };
        admitted++;
      }
    }
    expect(admitted).toBeGreaterThanOrEqual(1000);
    expect(admitted).toBeLessThanOrEqual(1000 + limit.capacity);
  });
});
