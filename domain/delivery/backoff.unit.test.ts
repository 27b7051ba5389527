import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../contracts/common.js";
import { backoffDelayMs, MAX_RETRY_AFTER_MS, parseRetryAfterMs } from "./backoff.js";

const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY }; // 5 s × 3^n, capped at 600 s

describe("backoffDelayMs", () => {
  it("grows by the factor with each failed attempt", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n, 0.5))).toEqual([5_000, 15_000, 45_000, 135_000, 405_000]);
  });

  it("jitters within ±20 %", () => {
    expect(backoffDelayMs(policy, 1, 0)).toBe(4_000);
    expect(backoffDelayMs(policy, 1, 0.25)).toBe(4_500);
    expect(backoffDelayMs(policy, 1, 0.5)).toBe(5_000);
    expect(backoffDelayMs(policy, 1, 0.999_999)).toBe(6_000);
    for (let r = 0; r < 1; r += 0.01) {
      const d = backoffDelayMs(policy, 2, r);
      expect(d).toBeGreaterThanOrEqual(12_000);
      expect(d).toBeLessThanOrEqual(18_000);
    }
  });

  it("never exceeds maxDelayMs, jitter included", () => {
    expect(backoffDelayMs(policy, 6, 0.5)).toBe(600_000);
    expect(backoffDelayMs(policy, 6, 0.999)).toBe(600_000);
    expect(backoffDelayMs(policy, 6, 0)).toBe(480_000);
    expect(backoffDelayMs({ ...policy, factor: 10 }, 50, 0.9)).toBe(600_000);
  });

  it("stays constant with factor 1, and zero with no initial delay", () => {
    expect(backoffDelayMs({ ...policy, factor: 1 }, 5, 0.5)).toBe(5_000);
    expect(backoffDelayMs({ ...policy, initialDelayMs: 0 }, 3, 0.7)).toBe(0);
  });

  it("rounds to whole milliseconds", () => {
    expect(Number.isInteger(backoffDelayMs({ ...policy, initialDelayMs: 7 }, 2, 0.123))).toBe(true);
  });
});

describe("parseRetryAfterMs", () => {
  const now = new Date("2024-05-01T12:00:00Z");

  it("reads integer seconds", () => {
    expect(parseRetryAfterMs("120", now)).toBe(120_000);
    expect(parseRetryAfterMs(" 0 ", now)).toBe(0);
  });

  it("treats negative seconds as now", () => {
    expect(parseRetryAfterMs("-5", now)).toBe(0);
  });

  it("reads an HTTP date relative to now", () => {
    expect(parseRetryAfterMs("Wed, 01 May 2024 12:01:30 GMT", now)).toBe(90_000);
    expect(parseRetryAfterMs("Wednesday, 01-May-24 12:01:30 GMT", now)).toBe(90_000);
    expect(parseRetryAfterMs("Wed May  1 12:01:30 2024", now)).toBe(90_000);
  });

  it("treats a date in the past as now", () => {
    expect(parseRetryAfterMs("Wed, 01 May 2024 11:00:00 GMT", now)).toBe(0);
  });

  it("does not cap here: the retry rule does", () => {
    expect(parseRetryAfterMs("86400", now)).toBe(86_400_000);
    expect(MAX_RETRY_AFTER_MS).toBe(3_600_000);
  });

  it.each([undefined, "", "soon", "1.5", "12s", "2024-05-01T12:01:30Z", "Wed, 31 Feb 2024 12:00:00 GMT", "Wed, 01 Foo 2024 12:00:00 GMT"])("ignores %j", (header) =>
    expect(parseRetryAfterMs(header, now)).toBeUndefined(),
  );
});
