import type { DomainEventOf } from "../../contracts/events.js";
import type { Verdict } from "../delivery/classify.js";
import { DomainError } from "../errors.js";
import { assertNever } from "../shared/exhaustive.js";

/** The breaker's thresholds; {@link DEFAULT_BREAKER_CONFIG} holds the platform's defaults. */
export interface BreakerConfig {
  /** Consecutive transient failures (verdict `retry`) that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit stays open before probes may go. */
  halfOpenAfterMs: number;
  /** Probe attempts in flight at once while half-open. */
  maxProbes: number;
  /** How long a delivery waits when every probe slot is taken. */
  probeWaitMs: number;
}

export const DEFAULT_BREAKER_CONFIG: BreakerConfig = {
  failureThreshold: 5,
  halfOpenAfterMs: 60_000,
  maxProbes: 3,
  probeWaitMs: 1_000,
};

/**
 * An endpoint's circuit as its events record it (the endpoint state's `circuit`). `halfOpenAt` is
 * when probes may start (kept once half-open: when they did); `failingSince` is the first failure of
 * the unbroken run; both are cleared when the circuit closes.
 */
export interface EndpointCircuit {
  state: "closed" | "open" | "half_open";
  halfOpenAt?: string;
  failingSince?: string;
  consecutiveFailures?: number;
}

export const CLOSED_CIRCUIT: EndpointCircuit = { state: "closed" };

/** One process's breaker for one endpoint. */
export type BreakerState =
  | { state: "closed"; consecutiveFailures: number; failingSince?: string }
  | { state: "open"; consecutiveFailures: number; failingSince: string; halfOpenAt: string }
  /** `probesSince`: when the oldest probe in flight went, absent while none is. */
  | { state: "half_open"; consecutiveFailures: number; failingSince: string; halfOpenAt: string; probesInFlight: number; probesSince?: string };

export type CircuitEvent = DomainEventOf<"endpoint.circuit_opened"> | DomainEventOf<"endpoint.circuit_half_opened"> | DomainEventOf<"endpoint.circuit_closed">;

/** A change of state to record on the endpoint; `causeKey` is deterministic, for the append's dedupe id. */
export interface Transition {
  event: CircuitEvent;
  causeKey: string;
}

/** Whether an attempt may go now: a probe when half-open, or not at all and when to ask again. */
export type Admission = { allowed: true; probe: boolean } | { allowed: false; retryInMs: number };

/** What the breaker is told; time comes in as ISO strings, never from a clock. */
export type BreakerInput =
  /**
   * An attempt wants to go. `probeTimeoutMs`: the endpoint's attempt timeout, by when a probe in
   * flight has its answer; attempts turned away meanwhile come back no sooner.
   */
  | { type: "Admit"; now: string; probeTimeoutMs?: number }
  /** An attempt finished with this verdict; `probe` as its admission said. */
  | { type: "RecordResult"; verdict: Verdict; reason: string; probe: boolean; now: string }
  /** An admitted probe will never report (it was put back before sending). */
  | { type: "ReleaseProbe" }
  /** The endpoint's recorded circuit changed (another process, or a re-enable): take it over. */
  | { type: "Adopt"; circuit: EndpointCircuit };

export interface BreakerStep {
  state: BreakerState;
  transitions: Transition[];
  /** Set for `Admit` only. */
  admission?: Admission;
}

export const initialBreaker = (): BreakerState => ({ state: "closed", consecutiveFailures: 0 });

/** Milliseconds since the epoch of an ISO time passed in; refuses garbage. */
const timeOf = (iso: string, what: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new DomainError("unprocessable", `${what} is not a valid time: ${JSON.stringify(iso)}`);
  return ms;
};

const plus = (iso: string, ms: number) => new Date(timeOf(iso, "now") + ms).toISOString();

const open = (state: BreakerState, consecutiveFailures: number, reason: string, now: string, config: BreakerConfig): BreakerStep => {
  const failingSince = state.failingSince ?? now;
  const halfOpenAt = plus(now, config.halfOpenAfterMs);
  return {
    state: { state: "open", consecutiveFailures, failingSince, halfOpenAt },
    transitions: [
      {
        event: { type: "endpoint.circuit_opened", data: { consecutiveFailures, reason, halfOpenAt, failingSince } },
        causeKey: `opened:${halfOpenAt}`,
      },
    ],
  };
};

/** The longest an attempt turned away by a half-open circuit waits, so a recovered endpoint's backlog is not held back long. */
const MAX_PROBE_OUTCOME_WAIT_MS = 2_000;

/**
 * How long an attempt turned away by a half-open circuit waits: until the oldest probe's answer is
 * due (its timeout), at least `probeWaitMs` and at most {@link MAX_PROBE_OUTCOME_WAIT_MS}. Back
 * every second, a backlog behind a hanging probe would come and go for nothing until it times out.
 */
const probeOutcomeWaitMs = (state: Extract<BreakerState, { state: "half_open" }>, now: string, config: BreakerConfig, probeTimeoutMs?: number): number => {
  if (state.probesSince === undefined || probeTimeoutMs === undefined) return config.probeWaitMs;
  const dueInMs = timeOf(state.probesSince, "probesSince") + probeTimeoutMs - timeOf(now, "now");
  return Math.max(config.probeWaitMs, Math.min(MAX_PROBE_OUTCOME_WAIT_MS, dueInMs));
};

const admit = (state: BreakerState, now: string, config: BreakerConfig, probeTimeoutMs?: number): BreakerStep => {
  switch (state.state) {
    case "closed":
      return { state, transitions: [], admission: { allowed: true, probe: false } };
    case "open": {
      const waitMs = timeOf(state.halfOpenAt, "halfOpenAt") - timeOf(now, "now");
      if (waitMs > 0) return { state, transitions: [], admission: { allowed: false, retryInMs: waitMs } };
      const { consecutiveFailures, failingSince, halfOpenAt } = state;
      return {
        state: { state: "half_open", consecutiveFailures, failingSince, halfOpenAt, probesInFlight: 1, probesSince: now },
        transitions: [{ event: { type: "endpoint.circuit_half_opened", data: {} }, causeKey: `half_opened:${halfOpenAt}` }],
        admission: { allowed: true, probe: true },
      };
    }
    case "half_open": {
      if (state.probesInFlight >= config.maxProbes) {
        return { state, transitions: [], admission: { allowed: false, retryInMs: probeOutcomeWaitMs(state, now, config, probeTimeoutMs) } };
      }
      const probesSince = state.probesInFlight === 0 ? now : state.probesSince;
      return { state: { ...state, probesInFlight: state.probesInFlight + 1, probesSince }, transitions: [], admission: { allowed: true, probe: true } };
    }
    default:
      return assertNever(state, "breaker state");
  }
};

const releaseProbe = (state: BreakerState): BreakerState => {
  if (state.state !== "half_open") return state;
  const probesInFlight = Math.max(0, state.probesInFlight - 1);
  return { ...state, probesInFlight, probesSince: probesInFlight === 0 ? undefined : state.probesSince };
};

const closed = (state: BreakerState): BreakerStep => ({
  state: initialBreaker(),
  transitions: state.state === "half_open" ? [{ event: { type: "endpoint.circuit_closed", data: {} }, causeKey: `closed:${state.failingSince}` }] : [],
});

/**
 * Closed: a transient failure counts (the run's first one sets `failingSince`), a success resets,
 * a hopeless answer (`dead`: 4xx, redirects) neither counts nor resets. Half-open: only probes
 * matter; one success closes, one transient failure re-opens for another period. Open: results of
 * attempts that started before the circuit opened change nothing.
 */
const recordResult = (state: BreakerState, input: Extract<BreakerInput, { type: "RecordResult" }>, config: BreakerConfig): BreakerStep => {
  const { verdict, reason, probe, now } = input;
  if (state.state === "open" || (state.state === "half_open" && !probe)) return { state, transitions: [] };
  if (verdict === "dead") return { state: releaseProbe(state), transitions: [] };
  if (verdict === "success") return closed(state);
  const consecutiveFailures = state.consecutiveFailures + 1;
  if (state.state === "half_open") return open(state, consecutiveFailures, `probe failed: ${reason}`, now, config);
  if (consecutiveFailures >= config.failureThreshold) return open(state, consecutiveFailures, reason, now, config);
  return { state: { state: "closed", consecutiveFailures, failingSince: state.failingSince ?? now }, transitions: [] };
};

/**
 * Takes over a recorded circuit that changed. A local open or half-open circuit at least as recent
 * (its own events coming back through the registry) is kept, with its probes in flight.
 */
const adopt = (state: BreakerState, circuit: EndpointCircuit, config: BreakerConfig): BreakerState => {
  if (circuit.state === "closed") return initialBreaker();
  const halfOpenAt = circuit.halfOpenAt ?? new Date(0).toISOString();
  if (state.state !== "closed") {
    const newer = timeOf(state.halfOpenAt, "halfOpenAt") - timeOf(halfOpenAt, "halfOpenAt");
    if (newer > 0 || (newer === 0 && (circuit.state === "open" || state.state === "half_open"))) return state;
  }
  const consecutiveFailures = circuit.consecutiveFailures ?? config.failureThreshold;
  const failingSince = circuit.failingSince ?? state.failingSince ?? halfOpenAt;
  return circuit.state === "open"
    ? { state: "open", consecutiveFailures, failingSince, halfOpenAt }
    : { state: "half_open", consecutiveFailures, failingSince, halfOpenAt, probesInFlight: 0 };
};

/**
 * The circuit breaker of one endpoint in one process, as a pure step function: closed → open after
 * `failureThreshold` consecutive transient failures → half-open once `halfOpenAfterMs` have passed,
 * letting up to `maxProbes` attempts through → closed on a probe's success, open again on its failure.
 */
export const stepBreaker = (state: BreakerState, input: BreakerInput, config: BreakerConfig = DEFAULT_BREAKER_CONFIG): BreakerStep => {
  switch (input.type) {
    case "Admit":
      return admit(state, input.now, config, input.probeTimeoutMs);
    case "RecordResult":
      return recordResult(state, input, config);
    case "ReleaseProbe":
      return { state: releaseProbe(state), transitions: [] };
    case "Adopt":
      return { state: adopt(state, input.circuit, config), transitions: [] };
    default:
      return assertNever(input, "breaker input");
  }
};

/** The breaker's state as the endpoint records it. */
export const circuitOf = (state: BreakerState): EndpointCircuit => {
  if (state.state === "closed") return CLOSED_CIRCUIT;
  const { consecutiveFailures, failingSince, halfOpenAt } = state;
  return { state: state.state, halfOpenAt, failingSince, consecutiveFailures };
};
