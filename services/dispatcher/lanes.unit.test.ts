import { describe, expect, it } from "vitest";
import { createLanes } from "./lanes.js";

describe("per-endpoint lanes", () => {
  it("gives at most slotsPerEndpoint slots to one endpoint, the rest in arrival order as slots free up", async () => {
    const lanes = createLanes({ slotsPerEndpoint: 2 });
    const order: number[] = [];
    const slots = await Promise.all([lanes.acquire("ep_a"), lanes.acquire("ep_a")]);
    const waiting = [3, 4, 5].map((n) => lanes.acquire("ep_a").then((slot) => (order.push(n), slot)));
    expect(lanes.load("ep_a")).toMatchObject({ inFlight: 2, queued: 3 });
    slots[0]!.release(10);
    const third = await waiting[0]!;
    expect(lanes.load("ep_a")).toMatchObject({ inFlight: 2, queued: 2 });
    slots[1]!.release(10);
    third.release(10);
    for (const slot of await Promise.all(waiting.slice(1))) slot.release();
    expect(order).toEqual([3, 4, 5]);
    expect(lanes.load("ep_a")).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("never lets a newcomer overtake a delivery handed a freed slot", async () => {
    const lanes = createLanes({ slotsPerEndpoint: 1 });
    const first = await lanes.acquire("ep_a");
    const second = lanes.acquire("ep_a");
    first.release();
    // The freed slot went to the one waiting; a newcomer in the same tick waits.
    const third = lanes.acquire("ep_a");
    expect(lanes.load("ep_a")).toMatchObject({ inFlight: 1, queued: 1 });
    (await second).release();
    (await third).release();
  });

  it("keeps endpoints apart: one endpoint's full lane does not delay another's", async () => {
    const lanes = createLanes({ slotsPerEndpoint: 1 });
    await lanes.acquire("ep_slow");
    void lanes.acquire("ep_slow");
    const other = await lanes.acquire("ep_fast");
    expect(lanes.load("ep_fast")).toMatchObject({ inFlight: 1, queued: 0 });
    other.release();
  });

  it("reports the attempts' moving average and the age of the oldest attempt in flight", async () => {
    let now = 0;
    const lanes = createLanes({ slotsPerEndpoint: 4, now: () => now });
    expect(lanes.load("ep_a").recentAttemptMs).toBeUndefined();
    (await lanes.acquire("ep_a")).release(100);
    expect(lanes.load("ep_a").recentAttemptMs).toBe(100);
    (await lanes.acquire("ep_a")).release(200);
    expect(lanes.load("ep_a").recentAttemptMs).toBe(120);
    const hanging = await lanes.acquire("ep_a");
    now = 5_000;
    expect(lanes.load("ep_a")).toMatchObject({ recentAttemptMs: 120, oldestInFlightMs: 5_000 });
    hanging.release();
  });

  it("releases a slot once however often release is called", async () => {
    const lanes = createLanes({ slotsPerEndpoint: 1 });
    const slot = await lanes.acquire("ep_a");
    slot.release(5);
    slot.release(5);
    expect(lanes.load("ep_a")).toMatchObject({ inFlight: 0, recentAttemptMs: 5 });
  });
});
