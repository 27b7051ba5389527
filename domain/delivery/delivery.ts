import type { RetryPolicy } from "../../contracts/common.js";
import type { DomainEventOf, ErrorClass, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { compact } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";
import { classifyAttempt, type NetworkError } from "./classify.js";
import { decideOutcome, type DeliveryOutcomeEvent } from "./outcome.js";

type Scheduled = EventData<"delivery.scheduled">;
type Attempted = EventData<"delivery.attempted">;

/** What the dispatcher observed on one attempt; the decider classifies it. */
export interface ObservedAttempt {
  startedAt: string;
  latencyMs: number;
  statusCode?: number;
  networkError?: NetworkError;
  error?: string;
  responseSnippet?: string;
  retryAfterMs?: number;
}

/** Commands the delivery aggregate accepts; `now` and `random` come from the caller. */
export type DeliveryCommand =
  | ({ type: "ScheduleDelivery" } & Scheduled)
  | { type: "RecordAttempt"; attempt: ObservedAttempt; policy: RetryPolicy; now: string; random: number }
  | { type: "ResolveAttempt"; policy: RetryPolicy; now: string; random: number }
  | { type: "AbandonDelivery"; reason: string; errorClass: ErrorClass }
  | { type: "ReplayDelivery"; replayId: string };

/**
 * The attempt series a delivery is in: 1 as scheduled, one more per replay. Attempt numbers go on
 * across series (so no attempt is ever recorded twice); the retry budget counts within one.
 */
export interface AttemptSeries {
  series: number;
  /** The attempt number that opens this series (1 for the first). */
  seriesFirstAttempt: number;
  /** Every replay that started a series of this delivery, oldest first. */
  replayIds: readonly string[];
}

/**
 * A delivery's lifecycle. `attempted` is the gap between an attempt and its outcome, found only in
 * streams written before the outcome carried its attempt: a `delivery.attempted` whose outcome a
 * crash kept from being appended. `seriesStartedAt` is the start of the series' first attempt (the
 * retry window runs from it).
 */
export type DeliveryState =
  | { status: "absent" }
  | ({ status: "pending" | "retrying"; scheduled: Scheduled; nextAttempt: number; nextAttemptAt?: string; seriesStartedAt?: string } & AttemptSeries)
  | ({ status: "attempted"; scheduled: Scheduled; lastAttempt: Attempted; seriesStartedAt: string } & AttemptSeries)
  | ({ status: "succeeded" | "dead"; scheduled: Scheduled; attempts: number } & AttemptSeries);

/** Events the delivery aggregate emits. */
export type DeliveryEvent = DomainEventOf<"delivery.scheduled"> | DomainEventOf<"delivery.attempted"> | DeliveryOutcomeEvent | DomainEventOf<"delivery.replayed">;

type Waiting = Extract<DeliveryState, { status: "pending" | "retrying" }>;

const FIRST_SERIES: AttemptSeries = { series: 1, seriesFirstAttempt: 1, replayIds: [] };

/**
 * The attempt an event records, if it records one: the attempt an outcome carries (version 2), or a
 * `delivery.attempted` of a stream written before it. Readers that count or time attempts take
 * them from here, so both forms count once.
 */
export function attemptRecordedBy(event: { type: string; data?: unknown }): Attempted | undefined {
  if (event.type === "delivery.attempted") return event.data as Attempted;
  if (event.type === "delivery.succeeded" || event.type === "delivery.retry_scheduled" || event.type === "delivery.dead_lettered") {
    return (event.data as { attempted?: Attempted }).attempted;
  }
  return undefined;
}

/** True once a delivery has succeeded or been dead-lettered (a replay may still revive a dead one). */
export const isTerminal = (state: DeliveryState): state is Extract<DeliveryState, { status: "succeeded" | "dead" }> =>
  state.status === "succeeded" || state.status === "dead";

/**
 * The retry window of a waiting delivery (`maxDurationMs` long): from its series' first attempt,
 * or, for a first series never attempted, from the message's acceptance, so a backlog behind a dead
 * endpoint ends in the DLQ instead of waiting for days. A replayed series not yet attempted has none.
 */
export function retryWindowOf(waiting: Waiting, maxDurationMs: number): { startedAt: number; maxDurationMs: number } | undefined {
  const start = waiting.seriesStartedAt ?? (waiting.series === 1 ? waiting.scheduled.messageReceivedAt : undefined);
  return start === undefined ? undefined : { startedAt: Date.parse(start), maxDurationMs };
}

/** True when replay `replayId` started a series of this delivery. */
export const wasReplayedBy = (state: DeliveryState, replayId: string): boolean => state.status !== "absent" && state.replayIds.includes(replayId);

const requireWaiting = (state: DeliveryState, action: string): Waiting => {
  if (state.status === "absent") throw new DomainError("not_found", "delivery not found");
  if (state.status !== "pending" && state.status !== "retrying") {
    throw new DomainError("conflict", `cannot ${action} a delivery that is ${state.status}`);
  }
  return state;
};

const recordAttempt = (command: Extract<DeliveryCommand, { type: "RecordAttempt" }>, state: DeliveryState): DeliveryEvent[] => {
  const waiting = requireWaiting(state, "record an attempt on");
  const { startedAt, latencyMs, statusCode, networkError, error, responseSnippet, retryAfterMs } = command.attempt;
  const verdict = classifyAttempt({ statusCode, networkError, retryAfterMs });
  const attempted: Attempted = compact({
    attempt: waiting.nextAttempt,
    startedAt,
    latencyMs: Math.max(0, Math.round(latencyMs)),
    statusCode,
    errorClass: verdict.errorClass,
    error: error ?? (verdict.verdict === "success" ? undefined : verdict.reason),
    responseSnippet,
    retryAfterMs: retryAfterMs === undefined ? undefined : Math.max(0, Math.round(retryAfterMs)),
  });
  const seriesStartedAt = waiting.seriesStartedAt ?? startedAt;
  const { policy, now, random } = command;
  // The attempt travels in its outcome: one event, one append.
  return [decideOutcome({ attempted, seriesFirstAttempt: waiting.seriesFirstAttempt, seriesStartedAt, policy, now, random, carriesAttempt: true })];
};

const replay = (command: Extract<DeliveryCommand, { type: "ReplayDelivery" }>, state: DeliveryState): DeliveryEvent[] => {
  if (state.status === "absent") throw new DomainError("not_found", "delivery not found");
  // Idempotent: the same replay naming the delivery again (a redelivered request) changes nothing.
  if (state.replayIds.includes(command.replayId)) return [];
  if (state.status !== "dead") throw new DomainError("conflict", `cannot replay a delivery that is ${state.status}`);
  return [{ type: "delivery.replayed", data: { replayId: command.replayId, series: state.series + 1 } }];
};

const decide = (command: DeliveryCommand, state: DeliveryState): DeliveryEvent[] => {
  switch (command.type) {
    case "ScheduleDelivery": {
      // Idempotent: a redelivered routing decision schedules the same delivery id again.
      if (state.status !== "absent") return [];
      const { type: _type, ...scheduled } = command;
      return [{ type: "delivery.scheduled", data: scheduled }];
    }
    case "RecordAttempt":
      return recordAttempt(command, state);
    case "ResolveAttempt": {
      if (state.status !== "attempted") throw new DomainError("conflict", `no unresolved attempt (delivery is ${state.status})`);
      const { policy, now, random } = command;
      const { lastAttempt: attempted, seriesFirstAttempt, seriesStartedAt } = state;
      return [decideOutcome({ attempted, seriesFirstAttempt, seriesStartedAt, policy, now, random, carriesAttempt: false })];
    }
    case "AbandonDelivery": {
      const waiting = requireWaiting(state, "abandon");
      const { errorClass, reason } = command;
      return [{ type: "delivery.dead_lettered", data: { attempt: waiting.nextAttempt - 1, errorClass, reason } }];
    }
    case "ReplayDelivery":
      return replay(command, state);
    default:
      return assertNever(command, "delivery command");
  }
};

/** The number of the last attempt made (0 when none was). */
const lastAttemptOf = (state: Exclude<DeliveryState, { status: "absent" }>): number => {
  if (isTerminal(state)) return state.attempts;
  return state.status === "attempted" ? state.lastAttempt.attempt : state.nextAttempt - 1;
};

const evolve = (state: DeliveryState, event: DeliveryEvent): DeliveryState => {
  if (event.type === "delivery.scheduled") return { status: "pending", scheduled: event.data, nextAttempt: 1, ...FIRST_SERIES };
  if (state.status === "absent") return state;
  const { scheduled, series, seriesFirstAttempt, replayIds } = state;
  const current: AttemptSeries = { series, seriesFirstAttempt, replayIds };
  const seriesStartedAt = "seriesStartedAt" in state ? state.seriesStartedAt : undefined;
  switch (event.type) {
    case "delivery.attempted":
      return { status: "attempted", scheduled, lastAttempt: event.data, seriesStartedAt: seriesStartedAt ?? event.data.startedAt, ...current };
    case "delivery.retry_scheduled": {
      const { nextAttempt, nextAttemptAt, attempted } = event.data;
      const startedAt = seriesStartedAt ?? attempted?.startedAt;
      return compact({ status: "retrying" as const, scheduled, nextAttempt, nextAttemptAt, seriesStartedAt: startedAt, ...current });
    }
    case "delivery.succeeded":
      return { status: "succeeded", scheduled, attempts: event.data.attempt, ...current };
    case "delivery.dead_lettered":
      return { status: "dead", scheduled, attempts: event.data.attempt, ...current };
    case "delivery.replayed": {
      // A new series: numbers go on from the last attempt, the budget and window start afresh.
      const next = lastAttemptOf(state) + 1;
      const { replayId, series: replaySeries } = event.data;
      return { status: "pending", scheduled, nextAttempt: next, series: replaySeries, seriesFirstAttempt: next, replayIds: [...replayIds, replayId] };
    }
    default:
      return assertNever(event, "delivery event");
  }
};

/** The delivery aggregate: one message to one endpoint, attempted until it succeeds or dies; a replay revives a dead one. */
export const deliveryDecider: Decider<DeliveryCommand, DeliveryState, DeliveryEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
