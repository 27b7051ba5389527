/**
 * Whether a delivery may take its place in its endpoint's lane now, or goes back to the server
 * (and for how long), or dies. One pure rule for what used to be spread over the dispatcher: a
 * retry not yet due, an open circuit (with the retry window), and an endpoint too slow to take more.
 */

/** A backlog behind an open circuit comes back at most this often per endpoint (200/s). */
export const CIRCUIT_COMEBACK_SPACING_MS = 5;
/** A delivery for a slow endpoint never comes back sooner than this. */
export const MIN_BUSY_COMEBACK_MS = 1_000;
/** An endpoint with attempts in flight and none finished for this long (its own time) hangs. */
export const HANG_EVIDENCE_MS = 1_000;
/** An endpoint whose attempts take this many times the process's average is slow (if its pace is too). */
export const SLOW_FACTOR = 4;
/**
 * A lane that gets one delivery through faster than this (over 200 a second) is never slow: its
 * deliveries wait in process however long its line, and never go back to the server, where a
 * loaded fast endpoint would lose its pace to redelivery for nothing.
 */
export const SLOW_PACE_MS = 5;
/** Before any attempt to an endpoint has finished, its lane takes this many deliveries per slot. */
export const UNPROVEN_QUEUE_PER_SLOT = 8;
/**
 * The most of the flow-control window that one tenant may hold while its endpoints are not proven
 * to flow (unproven, slow or hanging): this share of what the other tenants leave. Alone a tenant
 * may fill three quarters; beside it the next three quarters of the rest, and so on, so no
 * tenant's held deliveries (hanging endpoints by the hundred) can stop the process from taking any
 * other tenant's. A lane that flows is not held to it: its backlog is gone as fast as it came.
 */
export const TENANT_WINDOW_SHARE = 0.75;

/** How loaded one endpoint's lane in this process is. */
export interface LaneLoad {
  /** Attempts in flight to the endpoint. */
  inFlight: number;
  /** Deliveries waiting for one of its slots. */
  queued: number;
  /** Attempts it may have in flight at once. */
  slots: number;
  /** Its attempts' recent average duration; absent before any attempt finished. */
  recentAttemptMs?: number;
  /** How long its oldest attempt in flight has been going. */
  oldestInFlightMs?: number;
  /** How long since one of its attempts last finished; absent before any did. */
  sinceCompletionMs?: number;
  /**
   * The recent average attempt across every endpoint of this process. A saturated process makes
   * every endpoint look slow alike; only one slower than the rest is slow.
   */
  processAttemptMs?: number;
  /** How late this process's event loop runs now: that much of any wait is the process's own. */
  processLagMs?: number;
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
  retryWindow?: { startedAt: number; maxDurationMs: number };
  /** The process's flow-control window: delivery events in hand now (this one included), and how many it may hold. */
  inHand?: { count: number; limit: number };
  /** Of the events in hand, how many are the delivery's tenant's (this one included). */
  tenantInHand?: number;
  /** The endpoint's lane; absent when the delivery already holds a slot. */
  lane?: LaneLoad;
  /** The longest a delivery may expect to wait in a slow lane; longer, and it goes back to the server. */
  maxQueueWaitMs: number;
}

export type DeferReason = "not_due" | "circuit_open" | "endpoint_busy" | "tenant_busy";

export type AdmissionDecision =
  | { kind: "admit" }
  /** Back to the server for at least `afterMs`, each such delivery of the endpoint `spacingMs` after the one before. */
  | { kind: "defer"; reason: DeferReason; afterMs: number; spacingMs: number }
  /** Its retry window ends before the circuit half-opens: dead-letter it now, as the retry policy would. */
  | { kind: "expire"; reason: string };

/** What the lane says of its endpoint: how long an attempt takes now (absent while unproven), and whether it is slow. */
export interface LanePace {
  attemptMs?: number;
  /** The time one more delivery takes to get through: its slots' pace or its rate limit, whichever is slower. */
  perDeliveryMs: number;
  slow: boolean;
}

/**
 * Hanging: attempts in flight and none finished for a second of the endpoint's own time. Slow:
 * hanging, held to under 200 a second by its rate limit, or under 200 a second through its slots
 * while its attempts take several times the process's average.
 */
export function paceOf(lane: LaneLoad): LanePace {
  const { recentAttemptMs, oldestInFlightMs = 0, processLagMs = 0, perSecond } = lane;
  const own = (ms: number) => Math.max(0, ms - processLagMs);
  const stalledMs = Math.min(oldestInFlightMs, lane.sinceCompletionMs ?? oldestInFlightMs);
  const hanging = lane.inFlight > 0 && own(stalledMs) > HANG_EVIDENCE_MS;
  const attemptMs = hanging ? own(oldestInFlightMs) : recentAttemptMs;
  const byRate = perSecond ? 1_000 / perSecond : 0;
  const bySlots = (attemptMs ?? 0) / lane.slots;
  const perDeliveryMs = Math.max(bySlots, byRate);
  const slowerThanTheRest = recentAttemptMs !== undefined && lane.processAttemptMs !== undefined && recentAttemptMs > SLOW_FACTOR * lane.processAttemptMs;
  const slow = hanging || byRate >= SLOW_PACE_MS || (slowerThanTheRest && bySlots >= SLOW_PACE_MS);
  return { attemptMs, perDeliveryMs, slow };
}

export function admitDelivery(input: AdmissionInput): AdmissionDecision {
  const { now } = input;
  if (input.dueAt !== undefined && input.dueAt > now) return { kind: "defer", reason: "not_due", afterMs: input.dueAt - now, spacingMs: 0 };
  if (input.circuitHalfOpenAt !== undefined && input.circuitHalfOpenAt > now) {
    const waitMs = input.circuitHalfOpenAt - now;
    const { retryWindow } = input;
    if (retryWindow && now + waitMs - retryWindow.startedAt > retryWindow.maxDurationMs) {
      return { kind: "expire", reason: `retry window of ${retryWindow.maxDurationMs} ms exhausted while the endpoint's circuit was open` };
    }
    return { kind: "defer", reason: "circuit_open", afterMs: waitMs, spacingMs: CIRCUIT_COMEBACK_SPACING_MS };
  }
  const { lane, inHand, tenantInHand } = input;
  if (inHand && tenantInHand !== undefined && tenantInHand > Math.max(1, TENANT_WINDOW_SHARE * (inHand.limit - (inHand.count - tenantInHand)))) {
    // Past its share, only a lane proven to flow keeps taking the tenant's deliveries in process.
    const pace = lane && paceOf(lane);
    if (!pace || pace.attemptMs === undefined || pace.slow) {
      return { kind: "defer", reason: "tenant_busy", afterMs: MIN_BUSY_COMEBACK_MS, spacingMs: CIRCUIT_COMEBACK_SPACING_MS };
    }
  }
  // A free slot, or a short wait behind deliveries that flow: keep it here.
  if (!lane || (lane.inFlight < lane.slots && lane.queued === 0)) return { kind: "admit" };
  // While the process has room, nobody waits behind this lane: it may hold a quarter of the window.
  // Not a rate-limited one: its pace is set, and its backlog is better left for every dispatcher.
  if (!lane.perSecond && inHand && inHand.count < inHand.limit / 2 && lane.queued < inHand.limit / 4) return { kind: "admit" };
  const pace = paceOf(lane);
  if (pace.attemptMs === undefined) {
    // No attempt has finished yet (a first burst, or a hang not yet told from a slow start): a
    // short line, and the rest back soon at the circuit's pace rather than all at once.
    if (lane.queued < lane.slots * UNPROVEN_QUEUE_PER_SLOT) return { kind: "admit" };
    return { kind: "defer", reason: "endpoint_busy", afterMs: MIN_BUSY_COMEBACK_MS, spacingMs: CIRCUIT_COMEBACK_SPACING_MS };
  }
  const expectedWaitMs = (lane.queued + 1) * pace.perDeliveryMs;
  if (!pace.slow || expectedWaitMs <= input.maxQueueWaitMs) return { kind: "admit" };
  // Slow, hanging or rate-limited: the overflow waits on the server, back at the lane's pace.
  return { kind: "defer", reason: "endpoint_busy", afterMs: Math.max(MIN_BUSY_COMEBACK_MS, expectedWaitMs), spacingMs: pace.perDeliveryMs };
}
