/**
 * Whether a delivery may take its place in its endpoint's lane now, or goes back to the server
 * (and for how long), or dies. One pure rule for what used to be spread over the dispatcher: a
 * retry not yet due, an open circuit (with the retry window), and an endpoint too slow to take more.
 */

/** A backlog behind an open circuit comes back at most this often per endpoint (200/s). */
export const CIRCUIT_COMEBACK_SPACING_MS = 5;
/** A delivery for a slow endpoint never comes back sooner than this. */
export const MIN_BUSY_COMEBACK_MS = 1_000;

/** How loaded one endpoint's lane in this process is. */
export interface LaneLoad {
  /** Attempts in flight to the endpoint. */
  inFlight: number;
  /** Deliveries waiting for one of its slots. */
  queued: number;
  /** Attempts it may have in flight at once. */
  slots: number;
  /**
   * How long an attempt there takes now: its recent average, or the age of its oldest attempt in
   * flight when that is longer (a hanging endpoint shows at once). Absent before any attempt.
   */
  attemptMs?: number;
  /** The strictest outbound rate limit (tokens per second) its attempts take from, if any. */
  perSecond?: number;
}

export interface AdmissionInput {
  now: number;
  /** When a scheduled retry is due (epoch ms). */
  dueAt?: number;
  /** When the endpoint's open circuit half-opens (epoch ms); absent or past when it is not open. */
  circuitHalfOpenAt?: number;
  /** The delivery's retry window once known: counted from `startedAt`, `maxDurationMs` long. */
  window?: { startedAt: number; maxDurationMs: number };
  /** The endpoint's lane; absent when the delivery already holds a slot. */
  lane?: LaneLoad;
  /** The longest a delivery may expect to wait in the lane; longer, and it goes back to the server. */
  maxQueueWaitMs: number;
}

export type DeferReason = "not_due" | "circuit_open" | "endpoint_busy";

export type AdmissionDecision =
  | { kind: "admit" }
  /** Back to the server for at least `afterMs`, each such delivery of the endpoint `spacingMs` after the one before. */
  | { kind: "defer"; reason: DeferReason; afterMs: number; spacingMs: number }
  /** Its retry window ends before the circuit half-opens: dead-letter it now, as the retry policy would. */
  | { kind: "expire"; reason: string };

/**
 * The time one more delivery of the lane takes to get through it: its slots' pace or its rate
 * limit, whichever is slower.
 */
export function perDeliveryMs(lane: LaneLoad): number {
  const bySlots = (lane.attemptMs ?? 0) / lane.slots;
  return lane.perSecond ? Math.max(bySlots, 1_000 / lane.perSecond) : bySlots;
}

export function admitDelivery(input: AdmissionInput): AdmissionDecision {
  const { now } = input;
  if (input.dueAt !== undefined && input.dueAt > now) return { kind: "defer", reason: "not_due", afterMs: input.dueAt - now, spacingMs: 0 };
  if (input.circuitHalfOpenAt !== undefined && input.circuitHalfOpenAt > now) {
    const waitMs = input.circuitHalfOpenAt - now;
    const { window } = input;
    if (window && now + waitMs - window.startedAt > window.maxDurationMs) {
      return { kind: "expire", reason: `retry window of ${window.maxDurationMs} ms exhausted while the endpoint's circuit was open` };
    }
    return { kind: "defer", reason: "circuit_open", afterMs: waitMs, spacingMs: CIRCUIT_COMEBACK_SPACING_MS };
  }
  const { lane } = input;
  // A free slot, or a short wait behind deliveries that flow: keep it here.
  if (!lane || (lane.inFlight < lane.slots && lane.queued === 0)) return { kind: "admit" };
  const spacingMs = perDeliveryMs(lane);
  const expectedWaitMs = (lane.queued + 1) * spacingMs;
  if (expectedWaitMs <= input.maxQueueWaitMs) return { kind: "admit" };
  // Slow, hanging or rate-limited: the overflow waits on the server, back at the lane's pace.
  return { kind: "defer", reason: "endpoint_busy", afterMs: Math.max(MIN_BUSY_COMEBACK_MS, expectedWaitMs), spacingMs };
}
