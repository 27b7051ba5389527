import { describe, expect, it } from "vitest";
import { admitDelivery, paceOf, CIRCUIT_COMEBACK_SPACING_MS, MIN_BUSY_COMEBACK_MS, UNPROVEN_QUEUE_PER_SLOT, type AdmissionInput, type LaneLoad } from "./admission.js";

const NOW = 1_000_000;
const idle: LaneLoad = { inFlight: 0, queued: 0, slots: 32 };
const full = (lane: Partial<LaneLoad>): LaneLoad => ({ inFlight: 32, queued: 0, slots: 32, ...lane });
const admit = (input: Partial<AdmissionInput>) => admitDelivery({ now: NOW, maxQueueWaitMs: 1_000, lane: idle, ...input });

describe("admitDelivery: a healthy endpoint flows", () => {
  it("given a free slot, when a delivery arrives, then it takes it", () => {
    expect(admit({ lane: { ...idle, inFlight: 31 } })).toEqual({ kind: "admit" });
  });

  it("given every slot taken by an endpoint answering in 2 ms, when a backlog of thousands arrives, then it waits in the lane (no put-back)", () => {
    // 32 slots at 2 ms each: 16 deliveries a millisecond, so 10,000 queued wait 625 ms.
    expect(admit({ lane: full({ queued: 10_000, recentAttemptMs: 2, oldestInFlightMs: 3, sinceCompletionMs: 1, processAttemptMs: 2 }) })).toEqual({ kind: "admit" });
  });

  it("given a saturated process where attempts take 300 ms alike, when the line is thousands long, then it still waits in process", () => {
    expect(admit({ lane: full({ queued: 4_000, recentAttemptMs: 300, oldestInFlightMs: 350, sinceCompletionMs: 5, processAttemptMs: 290 }) })).toEqual({ kind: "admit" });
  });

  it("given an endpoint whose first attempts were slow (a cold connection), then its line is judged by the average, not by one old attempt", () => {
    expect(admit({ lane: full({ queued: 100, recentAttemptMs: 40, oldestInFlightMs: 200, sinceCompletionMs: 10 }) })).toEqual({ kind: "admit" });
  });

  it("given no attempt finished yet, then a line of 8 per slot waits, and the rest comes back in a second at the circuit's pace", () => {
    const unproven = UNPROVEN_QUEUE_PER_SLOT * 32;
    expect(admit({ lane: full({ queued: unproven - 1, oldestInFlightMs: 300 }) })).toEqual({ kind: "admit" });
    expect(admit({ lane: full({ queued: unproven, oldestInFlightMs: 300 }) })).toEqual({
      kind: "defer",
      reason: "endpoint_busy",
      afterMs: MIN_BUSY_COMEBACK_MS,
      spacingMs: CIRCUIT_COMEBACK_SPACING_MS,
    });
  });

  it("given a slot and no lane (the delivery already holds a slot), then it goes", () => {
    expect(admitDelivery({ now: NOW, maxQueueWaitMs: 0 })).toEqual({ kind: "admit" });
  });
});

describe("admitDelivery: only a slow, hanging or rate-limited endpoint's overflow goes back", () => {
  it("given an endpoint whose attempts take 15 s, when its slots are full, then more go back, spaced at its pace", () => {
    const decision = admit({ lane: full({ queued: 2, recentAttemptMs: 15_000, oldestInFlightMs: 15_000, sinceCompletionMs: 14_000 }) });
    // One more delivery every 15 000 / 32 ms; this one is the third in line.
    expect(decision).toEqual({ kind: "defer", reason: "endpoint_busy", afterMs: 3 * (15_000 / 32), spacingMs: 15_000 / 32 });
  });

  it("given a rate limit of 25/s, when a second's worth is queued, then the next goes back, spaced 40 ms", () => {
    expect(admit({ lane: full({ inFlight: 5, queued: 24, recentAttemptMs: 2, perSecond: 25 }) })).toEqual({ kind: "admit" });
    expect(admit({ lane: full({ inFlight: 5, queued: 25, recentAttemptMs: 2, perSecond: 25 }) })).toEqual({
      kind: "defer",
      reason: "endpoint_busy",
      afterMs: 1_040,
      spacingMs: 40,
    });
  });

  it("given an endpoint answering in 300 ms beside others answering in 10 ms, then only a line over the wait limit goes back", () => {
    const slow = { recentAttemptMs: 300, oldestInFlightMs: 300, sinceCompletionMs: 5, processAttemptMs: 10 };
    expect(admit({ lane: full({ queued: 100, ...slow }) })).toEqual({ kind: "admit" });
    expect(admit({ lane: full({ queued: 200, ...slow }) })).toMatchObject({ kind: "defer", reason: "endpoint_busy", spacingMs: 300 / 32 });
  });

  it("never puts a busy endpoint's delivery back for less than a second", () => {
    const decision = admit({ lane: full({ queued: 20, recentAttemptMs: 2_000, processAttemptMs: 10 }), maxQueueWaitMs: 100 });
    expect(decision).toMatchObject({ kind: "defer", reason: "endpoint_busy" });
    expect(decision.kind === "defer" && decision.afterMs).toBeGreaterThanOrEqual(MIN_BUSY_COMEBACK_MS);
  });
});

describe("admitDelivery: the process's window", () => {
  const hanging = full({ queued: 300, recentAttemptMs: 15_000, oldestInFlightMs: 15_000, sinceCompletionMs: 10_000 });

  it("given a process holding little, then even a slow endpoint's line stays in process, up to a quarter of the window", () => {
    expect(admit({ lane: hanging, inHand: { count: 400, limit: 4_096 } })).toEqual({ kind: "admit" });
    expect(admit({ lane: { ...hanging, queued: 1_024 }, inHand: { count: 1_100, limit: 4_096 } })).toMatchObject({ kind: "defer", reason: "endpoint_busy" });
  });

  it("given a rate-limited endpoint, then its overflow goes back even while the process has room, for other dispatchers to share", () => {
    const limited = full({ queued: 300, recentAttemptMs: 2, oldestInFlightMs: 2, sinceCompletionMs: 1, perSecond: 10 });
    expect(admit({ lane: limited, inHand: { count: 400, limit: 4_096 } })).toMatchObject({ kind: "defer", reason: "endpoint_busy", spacingMs: 100 });
  });

  it("given a process holding half its window or more, then a slow endpoint's overflow goes back", () => {
    expect(admit({ lane: hanging, inHand: { count: 2_048, limit: 4_096 } })).toMatchObject({ kind: "defer", reason: "endpoint_busy" });
  });
});

describe("paceOf: slow, or only loaded", () => {
  it("given attempts finishing all the time, then the endpoint is not hanging, however long one of them runs", () => {
    expect(paceOf(full({ recentAttemptMs: 5, oldestInFlightMs: 3_000, sinceCompletionMs: 2 }))).toMatchObject({ attemptMs: 5, slow: false });
  });

  it("given attempts in flight and none finished for over a second, then it hangs, and an attempt takes as long as the oldest has run", () => {
    expect(paceOf(full({ recentAttemptMs: 5, oldestInFlightMs: 1_500, sinceCompletionMs: 1_400 }))).toMatchObject({ attemptMs: 1_500, slow: true });
    expect(paceOf(full({ oldestInFlightMs: 3_000 }))).toMatchObject({ attemptMs: 3_000, slow: true });
  });

  it("leaves out the process's own event-loop lag when it looks for a hang", () => {
    expect(paceOf(full({ recentAttemptMs: 5, oldestInFlightMs: 1_500, sinceCompletionMs: 1_400, processLagMs: 600 }))).toMatchObject({ slow: false });
  });

  it("given a saturated process where every endpoint's attempts take 300 ms alike, then none is slow", () => {
    expect(paceOf(full({ recentAttemptMs: 300, oldestInFlightMs: 400, sinceCompletionMs: 3, processAttemptMs: 280 }))).toMatchObject({ slow: false });
  });

  it("given an endpoint taking 300 ms where the process's attempts take 10 ms, then it is slow", () => {
    expect(paceOf(full({ recentAttemptMs: 300, oldestInFlightMs: 400, sinceCompletionMs: 3, processAttemptMs: 10 }))).toMatchObject({
      perDeliveryMs: 300 / 32,
      slow: true,
    });
  });

  it("given a rate limit under 200 a second, then it is slow at the limit's pace", () => {
    expect(paceOf(full({ recentAttemptMs: 2, sinceCompletionMs: 1, oldestInFlightMs: 2, perSecond: 25 }))).toEqual({ attemptMs: 2, perDeliveryMs: 40, slow: true });
    expect(paceOf(full({ recentAttemptMs: 2, sinceCompletionMs: 1, oldestInFlightMs: 2, perSecond: 500 }))).toMatchObject({ slow: false });
  });

  it("is unproven before any attempt finished and none has hung", () => {
    expect(paceOf(full({ oldestInFlightMs: 500 }))).toMatchObject({ attemptMs: undefined, slow: false });
  });
});

describe("admitDelivery: retries and circuits", () => {
  it("given a retry due in 4 s, then it goes back for exactly 4 s, unspaced (its backoff was jittered)", () => {
    expect(admit({ dueAt: NOW + 4_000 })).toEqual({ kind: "defer", reason: "not_due", afterMs: 4_000, spacingMs: 0 });
  });

  it("given a retry that is due, then it is admitted", () => {
    expect(admit({ dueAt: NOW })).toEqual({ kind: "admit" });
  });

  it("given an open circuit half-opening in 30 s, then it goes back until then, spaced 5 ms behind the others", () => {
    expect(admit({ circuitHalfOpenAt: NOW + 30_000 })).toEqual({ kind: "defer", reason: "circuit_open", afterMs: 30_000, spacingMs: CIRCUIT_COMEBACK_SPACING_MS });
  });

  it("given an open circuit and a retry window that ends before it half-opens, then the delivery expires", () => {
    const decision = admit({ circuitHalfOpenAt: NOW + 30_000, retryWindow: { startedAt: NOW - 3_590_000, maxDurationMs: 3_600_000 } });
    expect(decision).toEqual({ kind: "expire", reason: "retry window of 3600000 ms exhausted while the endpoint's circuit was open" });
  });

  it("given an open circuit and a window that outlasts it, then the delivery waits", () => {
    expect(admit({ circuitHalfOpenAt: NOW + 30_000, retryWindow: { startedAt: NOW, maxDurationMs: 3_600_000 } })).toMatchObject({
      kind: "defer",
      reason: "circuit_open",
    });
  });

  it("given a circuit whose half-open time has passed, then the lane decides", () => {
    expect(admit({ circuitHalfOpenAt: NOW - 1 })).toEqual({ kind: "admit" });
  });
});

describe("admitDelivery: a tenant's share of the window", () => {
  const tenantBusy = { kind: "defer", reason: "tenant_busy", afterMs: MIN_BUSY_COMEBACK_MS, spacingMs: CIRCUIT_COMEBACK_SPACING_MS };

  it("given a tenant alone, when it holds three quarters of the window, then its next delivery to an unproven endpoint goes back while a free slot waits", () => {
    expect(admit({ inHand: { count: 3_072, limit: 4_096 }, tenantInHand: 3_072 })).toEqual({ kind: "admit" });
    expect(admit({ inHand: { count: 3_073, limit: 4_096 }, tenantInHand: 3_073 })).toEqual(tenantBusy);
  });

  it("given a tenant past its share, when the delivery's endpoint flows (2 ms attempts), then it still waits in process; a hanging one's goes back", () => {
    const over = { inHand: { count: 4_000, limit: 4_096 }, tenantInHand: 4_000 };
    expect(admit({ ...over, lane: full({ queued: 3_000, recentAttemptMs: 2, oldestInFlightMs: 3, sinceCompletionMs: 1, processAttemptMs: 2 }) })).toEqual({
      kind: "admit",
    });
    expect(admit({ ...over, lane: { ...idle, recentAttemptMs: 2, sinceCompletionMs: 5 } })).toEqual({ kind: "admit" });
    expect(admit({ ...over, lane: { ...idle, inFlight: 3, oldestInFlightMs: 5_000, sinceCompletionMs: 5_000, recentAttemptMs: 2 } })).toEqual(tenantBusy);
  });

  it("given one tenant holding 3,072 (hanging endpoints by the hundred), then another tenant still gets three quarters of the rest", () => {
    expect(admit({ inHand: { count: 3_072 + 768, limit: 4_096 }, tenantInHand: 768 })).toEqual({ kind: "admit" });
    expect(admit({ inHand: { count: 3_072 + 769, limit: 4_096 }, tenantInHand: 769 })).toEqual(tenantBusy);
    // A third tenant's first delivery is taken, however full the other two keep the window.
    expect(admit({ inHand: { count: 4_000, limit: 4_096 }, tenantInHand: 1 })).toEqual({ kind: "admit" });
  });

  it("given a retry not due, then that is the reason it goes back, whatever its tenant holds", () => {
    expect(admit({ dueAt: NOW + 500, inHand: { count: 4_000, limit: 4_096 }, tenantInHand: 4_000 })).toMatchObject({ reason: "not_due" });
  });
});
