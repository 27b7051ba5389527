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
  | { type: "AbandonDelivery"; reason: string; errorClass: ErrorClass };

/**
 * A delivery's lifecycle. `attempted` is the gap between an attempt and its outcome: normally
 * closed in the same append, left open only if the dispatcher died in between.
 */
export type DeliveryState =
  | { status: "absent" }
  | { status: "pending" | "retrying"; scheduled: Scheduled; nextAttempt: number; nextAttemptAt?: string; firstAttemptAt?: string }
  | { status: "attempted"; scheduled: Scheduled; lastAttempt: Attempted; firstAttemptAt: string }
  | { status: "succeeded" | "dead"; scheduled: Scheduled; attempts: number };

/** Events the delivery aggregate emits. */
export type DeliveryEvent = DomainEventOf<"delivery.scheduled"> | DomainEventOf<"delivery.attempted"> | DeliveryOutcomeEvent;

type Waiting = Extract<DeliveryState, { status: "pending" | "retrying" }>;

/** True once a delivery has succeeded or been dead-lettered. */
export const isTerminal = (state: DeliveryState): state is Extract<DeliveryState, { status: "succeeded" | "dead" }> =>
  state.status === "succeeded" || state.status === "dead";

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
  const firstAttemptAt = waiting.firstAttemptAt ?? startedAt;
  const { policy, now, random } = command;
  return [{ type: "delivery.attempted", data: attempted }, decideOutcome({ attempted, firstAttemptAt, policy, now, random })];
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
      return [decideOutcome({ attempted: state.lastAttempt, firstAttemptAt: state.firstAttemptAt, policy, now, random })];
    }
    case "AbandonDelivery": {
      const waiting = requireWaiting(state, "abandon");
      const { errorClass, reason } = command;
      return [{ type: "delivery.dead_lettered", data: { attempt: waiting.nextAttempt - 1, errorClass, reason } }];
    }
    default:
      return assertNever(command, "delivery command");
  }
};

const evolve = (state: DeliveryState, event: DeliveryEvent): DeliveryState => {
  // A later `delivery.scheduled` (a replay) starts a new attempt series; the log keeps the old one.
  if (event.type === "delivery.scheduled") return { status: "pending", scheduled: event.data, nextAttempt: 1 };
  if (state.status === "absent") return state;
  const { scheduled } = state;
  const firstAttemptAt = "firstAttemptAt" in state ? state.firstAttemptAt : undefined;
  switch (event.type) {
    case "delivery.attempted":
      return { status: "attempted", scheduled, lastAttempt: event.data, firstAttemptAt: firstAttemptAt ?? event.data.startedAt };
    case "delivery.retry_scheduled": {
      const { nextAttempt, nextAttemptAt } = event.data;
      return compact({ status: "retrying" as const, scheduled, nextAttempt, nextAttemptAt, firstAttemptAt });
    }
    case "delivery.succeeded":
      return { status: "succeeded", scheduled, attempts: event.data.attempt };
    case "delivery.dead_lettered":
      return { status: "dead", scheduled, attempts: event.data.attempt };
    default:
      return assertNever(event, "delivery event");
  }
};

/** The delivery aggregate: one message to one endpoint, attempted until it succeeds or dies. */
export const deliveryDecider: Decider<DeliveryCommand, DeliveryState, DeliveryEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
