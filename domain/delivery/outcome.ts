import type { RetryPolicy } from "../../contracts/common.js";
import type { DomainEventOf, EventData } from "../../contracts/events.js";
import { DomainError } from "../errors.js";
import { backoffDelayMs, MAX_RETRY_AFTER_MS } from "./backoff.js";
import { classifyAttempt, networkErrorOf } from "./classify.js";

/** The event that settles a recorded attempt. */
export type DeliveryOutcomeEvent = DomainEventOf<"delivery.succeeded"> | DomainEventOf<"delivery.retry_scheduled"> | DomainEventOf<"delivery.dead_lettered">;

/** Everything the retry rule looks at; time and randomness come in, never from the clock. */
export interface OutcomeInput {
  attempted: EventData<"delivery.attempted">;
  /**
   * The attempt number that opened the current series: 1, or after a replay the attempt that
   * followed the last one before it. `maxAttempts` and the backoff count from here.
   */
  seriesFirstAttempt: number;
  /** `startedAt` of the series' first attempt: the retry window is measured from it. */
  seriesStartedAt: string;
  policy: RetryPolicy;
  now: string;
  random: number;
  /**
   * The outcome carries `attempted` (a new attempt: one event records both); false for an attempt a
   * `delivery.attempted` of an older stream already recorded.
   */
  carriesAttempt: boolean;
}

/** Milliseconds since the epoch of an ISO time passed in on a command; refuses garbage. */
export const timeOf = (iso: string, what: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new DomainError("unprocessable", `${what} is not a valid time: ${JSON.stringify(iso)}`);
  return ms;
};

const dead = (input: OutcomeInput, errorClass: EventData<"delivery.dead_lettered">["errorClass"], reason: string): DeliveryOutcomeEvent => ({
  type: "delivery.dead_lettered",
  data: { attempt: input.attempted.attempt, errorClass, reason, ...settled(input) },
});

/** The attempt an outcome settles, when it carries it. */
const settled = ({ attempted, carriesAttempt }: OutcomeInput) => (carriesAttempt ? { attempted } : {});

/** The attempt's place in its series, 1-based: what maxAttempts and the backoff count. */
export const attemptInSeries = (attempt: number, seriesFirstAttempt: number): number => Math.max(1, attempt - seriesFirstAttempt + 1);

/** Only 429 and 503 carry a `Retry-After` the retry policy honours (API.md's table). */
const HONOURS_RETRY_AFTER = new Set(["rate_limited", "unavailable"]);

/** The delay before the next attempt: the backoff, pushed back (never forward) by a bounded Retry-After. */
const retryDelayMs = ({ attempted, policy, random }: OutcomeInput, inSeries: number): number => {
  const backoff = backoffDelayMs(policy, inSeries, random);
  if (attempted.retryAfterMs === undefined || !HONOURS_RETRY_AFTER.has(attempted.errorClass)) return backoff;
  return Math.max(backoff, Math.min(attempted.retryAfterMs, MAX_RETRY_AFTER_MS));
};

/**
 * The outcome of an attempt (API.md "the retry policy"). It reads only the attempt as recorded and
 * the series it belongs to, so an attempt of an older stream whose outcome a crash lost resolves
 * the same way. A replay starts a new series: attempt numbers go on, but the
 * attempt budget, the backoff and the retry window start again.
 */
export const decideOutcome = (input: OutcomeInput): DeliveryOutcomeEvent => {
  const { attempted, policy } = input;
  const { attempt, statusCode, retryAfterMs } = attempted;
  const verdict = classifyAttempt({ statusCode, networkError: networkErrorOf(attempted.errorClass), retryAfterMs });
  if (verdict.verdict === "success" && statusCode !== undefined) {
    return { type: "delivery.succeeded", data: { attempt, statusCode, ...settled(input) } };
  }
  if (verdict.verdict !== "retry") return dead(input, verdict.errorClass, verdict.reason);
  // maxAttempts counts the first attempt too: 6 means one attempt and five retries.
  const inSeries = attemptInSeries(attempt, input.seriesFirstAttempt);
  if (inSeries >= policy.maxAttempts) {
    return dead(input, verdict.errorClass, `gave up after ${inSeries} attempts: ${verdict.reason}`);
  }
  const delayMs = retryDelayMs(input, inSeries);
  const nextAt = timeOf(input.now, "now") + delayMs;
  if (nextAt - timeOf(input.seriesStartedAt, "seriesStartedAt") > policy.maxDurationMs) {
    return dead(input, verdict.errorClass, `retry window of ${policy.maxDurationMs} ms exhausted: ${verdict.reason}`);
  }
  const { errorClass, reason } = verdict;
  return {
    type: "delivery.retry_scheduled",
    data: { attempt, nextAttempt: attempt + 1, nextAttemptAt: new Date(nextAt).toISOString(), delayMs, errorClass, reason, ...settled(input) },
  };
};
