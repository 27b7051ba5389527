import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createLoopLag, type LoopLag } from "./loop-lag.js";

const busyFor = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the event loop does not run: what a freeze or a saturated process looks like from inside
  }
};

describe("the process clock", () => {
  let clock: LoopLag;
  afterEach(() => clock.stop());

  it("given an event loop that runs, when 300 ms pass, then the process clock moves about as far", async () => {
    clock = createLoopLag();
    const before = clock.processNow();
    await sleep(300);
    // Not all of it on a loaded machine: a tick held up past 100 ms counts as the process's own stall.
    expect(clock.processNow() - before).toBeGreaterThanOrEqual(100);
  });

  it("given an event loop blocked for 600 ms, when asked during and after, then it stood (nearly) still", async () => {
    clock = createLoopLag();
    await sleep(120);
    const before = clock.processNow();
    busyFor(600);
    // Asked before any timer ran again: the stall not yet accounted for is left out too.
    expect(clock.processNow() - before).toBeLessThan(150);
    await sleep(200);
    expect(clock.processNow() - before).toBeLessThan(400);
  });
});
