import { describe, expect, it } from "vitest";
import { createOutboundLimits } from "./outbound-limits.js";

describe("outbound limits", () => {
  const endpoint = { key: "ep:1", bucket: { capacity: 1, refillPerSecond: 10 } };
  const tenant = { key: "tenant:1", bucket: { capacity: 1, refillPerSecond: 2 } };

  it("lets an attempt go at once while tokens last, then queues it in process for a short wait", () => {
    const limits = createOutboundLimits({ maxInlineWaitMs: 1_000 });
    expect(limits.admit([endpoint], 0)).toEqual({ waitMs: 0 });
    expect(limits.admit([endpoint], 0)).toEqual({ waitMs: 100 });
    expect(limits.admit([endpoint], 0)).toEqual({ waitMs: 200 });
  });

  it("defers, reserving nothing, when the wait is longer than it holds messages for", () => {
    const limits = createOutboundLimits({ maxInlineWaitMs: 300 });
    expect(limits.admit([endpoint, tenant], 0)).toEqual({ waitMs: 0 });
    const deferred = limits.admit([endpoint, tenant], 0);
    expect(deferred).toEqual({ deferMs: 500 - 150 });
    // Nothing was reserved, so the endpoint's own bucket still has its next token at 100 ms.
    expect(limits.admit([endpoint], 100)).toEqual({ waitMs: 0 });
  });

  it("applies the strictest bucket", () => {
    const limits = createOutboundLimits({ maxInlineWaitMs: 10_000 });
    limits.admit([endpoint, tenant], 0);
    expect(limits.admit([endpoint, tenant], 0)).toEqual({ waitMs: 500 });
  });
});
