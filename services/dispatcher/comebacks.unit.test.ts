import { describe, expect, it } from "vitest";
import { createComebacks } from "./comebacks.js";

describe("comebacks of deliveries an endpoint cannot take now", () => {
  const noJitter = () => 0;

  it("spaces one endpoint's comebacks like a queue, never sooner than asked", () => {
    const comebacks = createComebacks({ random: noJitter });
    const delays = Array.from({ length: 4 }, () => comebacks.delayFor("ep_a", 1_000, 250, 0));
    expect(delays).toEqual([1_000, 1_250, 1_500, 1_750]);
  });

  it("keeps each endpoint's queue to itself", () => {
    const comebacks = createComebacks({ random: noJitter });
    comebacks.delayFor("ep_a", 1_000, 500, 0);
    comebacks.delayFor("ep_a", 1_000, 500, 0);
    expect(comebacks.delayFor("ep_b", 1_000, 500, 0)).toBe(1_000);
  });

  it("starts again from the earliest time once the queue has drained", () => {
    const comebacks = createComebacks({ random: noJitter });
    comebacks.delayFor("ep_a", 1_000, 500, 0);
    expect(comebacks.delayFor("ep_a", 1_000, 500, 10_000)).toBe(1_000);
  });

  it("spreads a backlog longer than the maximum deferral at random up to it, without extending the queue", () => {
    const comebacks = createComebacks({ random: () => 0.5, maxDeferMs: 10_000 });
    const delays = Array.from({ length: 200 }, () => comebacks.delayFor("ep_a", 1_000, 100, 0));
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    // Past the cap, the 5,500 ms midpoint between the earliest time and the cap.
    expect(delays.at(-1)).toBe(1_000 + 0.5 * 9_000);
  });

  it("jitters each comeback within its spacing", () => {
    const comebacks = createComebacks({ random: () => 0.999 });
    const first = comebacks.delayFor("ep_a", 1_000, 100, 0);
    expect(first).toBeGreaterThanOrEqual(1_000);
    expect(first).toBeLessThan(1_100);
  });
});
