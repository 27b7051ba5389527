import { describe, expect, it } from "vitest";
import { DEFAULT_DISABLE_AFTER_MS, describeDuration, unhealthyReason } from "./health.js";

describe("endpoint health", () => {
  const since = "2025-01-01T00:00:00.000Z";
  const after = (ms: number) => new Date(Date.parse(since) + ms).toISOString();

  it("disables after five days of continuous failure by default", () => {
    expect(DEFAULT_DISABLE_AFTER_MS).toBe(432_000_000);
    expect(unhealthyReason({ failingSince: since, now: after(DEFAULT_DISABLE_AFTER_MS), disableAfterMs: DEFAULT_DISABLE_AFTER_MS })).toBeUndefined();
    expect(unhealthyReason({ failingSince: since, now: after(DEFAULT_DISABLE_AFTER_MS + 1), disableAfterMs: DEFAULT_DISABLE_AFTER_MS })).toBe(
      "failing continuously since 2025-01-01T00:00:00.000Z (longer than 5 days)",
    );
  });

  it("says nothing without a failing run", () => {
    expect(unhealthyReason({ failingSince: undefined, now: after(10 ** 12), disableAfterMs: 1 })).toBeUndefined();
  });

  it("describes durations in their largest exact unit", () => {
    expect(describeDuration(3_600_000)).toBe("1 hour");
    expect(describeDuration(90 * 60_000)).toBe("90 minutes");
    expect(describeDuration(1_500)).toBe("1500 ms");
  });
});
