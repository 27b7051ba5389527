import { describe, expect, it } from "vitest";
import { createLocalBuckets } from "../shared/shared-buckets.js";
import { createOutboundLimits } from "./outbound-limits.js";

describe("outbound limits", () => {
  const endpoint = { key: "ep.1", bucket: { capacity: 1, refillPerSecond: 10 } };
  const tenant = { key: "tenant.1", bucket: { capacity: 1, refillPerSecond: 2 } };

  /** Limits on in-memory buckets and a clock that only sleeping moves. */
  function limitsAt(maxInlineWaitMs: number) {
    const clock = { ms: 0 };
    const limits = createOutboundLimits(createLocalBuckets(), { maxInlineWaitMs, now: () => clock.ms, sleep: async (ms) => (clock.ms += ms) });
    return { clock, limits };
  }

  it("lets an attempt go at once while tokens last, then waits in line in process the exact ms", async () => {
    const { clock, limits } = limitsAt(1_000);
    const admitted: number[] = [];
    await Promise.all(
      [0, 1, 2].map(async () => {
        expect(await limits.admit([endpoint])).toEqual({ admitted: true });
        admitted.push(clock.ms);
      }),
    );
    expect(admitted).toEqual([0, 100, 200]);
  });

  it("defers at once, keeping nothing, when its place in line is further off than it holds messages for", async () => {
    const { clock, limits } = limitsAt(300);
    const inLine = [0, 1, 2, 3].map(() => limits.admit([endpoint]));
    // Four ahead at 10/s: 400 ms away, past 300: back to the server for 400 − 150 ms.
    expect(await limits.admit([endpoint])).toEqual({ deferMs: 250 });
    expect(await Promise.all(inLine)).toEqual(Array(4).fill({ admitted: true }));
    expect(clock.ms).toBe(300);
  });

  it("gives the endpoint's token back when the tenant's bucket refuses and the wait is too long", async () => {
    const { clock, limits } = limitsAt(300);
    expect(await limits.admit([endpoint, tenant])).toEqual({ admitted: true });
    // At 100 ms the endpoint has a token again, the tenant's is 400 ms away: defer, endpoint token kept.
    clock.ms = 100;
    expect(await limits.admit([endpoint, tenant])).toEqual({ deferMs: 400 });
    expect(await limits.admit([endpoint])).toEqual({ admitted: true });
    expect(clock.ms).toBe(100);
  });

  it("applies the strictest bucket", async () => {
    const { clock, limits } = limitsAt(10_000);
    expect(await limits.admit([endpoint, tenant])).toEqual({ admitted: true });
    expect(await limits.admit([endpoint, tenant])).toEqual({ admitted: true });
    expect(clock.ms).toBe(500);
  });
});
