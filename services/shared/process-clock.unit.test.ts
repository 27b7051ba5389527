import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { createProcessClock, type ProcessClock } from "./process-clock.js";

const busyFor = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the event loop does not run: what a freeze or a saturated process looks like from inside
  }
};

describe("the process clock", () => {
  let clock: ProcessClock;
  afterEach(() => clock.stop());

  it("given an event loop that runs, when 300 ms pass, then the process clock moves about as far", async () => {
    clock = createProcessClock();
    const before = clock.now();
    await sleep(300);
    // Not all of it on a loaded machine: a tick held up past 100 ms counts as the process's own stall.
    expect(clock.now() - before).toBeGreaterThanOrEqual(100);
  });

  it("given an event loop blocked for 600 ms, when asked during and after, then it stood (nearly) still", async () => {
    clock = createProcessClock();
    await sleep(120);
    const before = clock.now();
    busyFor(600);
    // Asked before any timer ran again: the stall not yet accounted for is left out too.
    expect(clock.now() - before).toBeLessThan(150);
    await sleep(200);
    expect(clock.now() - before).toBeLessThan(400);
  });

  it("given an event loop blocked longer than the long-stall threshold, then it counts one long stall, during it and after", async () => {
    clock = createProcessClock({ longStallMs: 300 });
    await sleep(120);
    busyFor(200);
    await sleep(120);
    expect(clock.longStalls()).toBe(0);
    busyFor(500);
    expect(clock.longStalls()).toBe(1);
    await sleep(120);
    expect(clock.longStalls()).toBe(1);
  });
});
