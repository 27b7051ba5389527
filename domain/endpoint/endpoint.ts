import type { DomainEventOf, EventData } from "../../contracts/events.js";
import { CLOSED_CIRCUIT, type EndpointCircuit } from "../circuit/breaker.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { assertStrongSecret, type SecretKeyBytes } from "../signing/secret-strength.js";
import { compact } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";
import { EncryptedSecret, MAX_ROTATION_GRACE_SECONDS } from "../../contracts/common.js";
import { applyChanges, assertEndpointId, assertValidRecord, diffChanges, DISABLED_BY_USER, type EndpointChanges, type EndpointRecord } from "./record.js";

export { CLOSED_CIRCUIT, type EndpointCircuit } from "../circuit/breaker.js";
export {
  DEFAULT_ROTATION_GRACE_SECONDS,
  DISABLED_BY_USER,
  MAX_ROTATION_GRACE_SECONDS,
  signingSecrets,
  type PreviousSecret,
  effectiveDeliveryPolicy,
  effectiveRetryPolicy,
  type EndpointChanges,
  type EndpointRecord,
} from "./record.js";

/**
 * Commands the endpoint aggregate accepts. `secret` is already encrypted (`enc:v1:…`); `secretKeyBytes`
 * says how long its key is, so a weak one is refused here.
 */
export type EndpointCommand =
  | ({ type: "RegisterEndpoint"; endpointId: string; secretKeyBytes: SecretKeyBytes } & EventData<"endpoint.registered">)
  | { type: "UpdateEndpoint"; changes: EndpointChanges }
  | { type: "DisableEndpoint"; reason: string }
  | { type: "DeleteEndpoint" }
  /** `secret` is the new one, encrypted; the current one signs beside it for `graceSeconds` from `now`. */
  | { type: "RotateSecret"; secret: string; secretKeyBytes: SecretKeyBytes; graceSeconds: number; now: string }
  | ({ type: "OpenCircuit" } & EventData<"endpoint.circuit_opened">)
  | { type: "HalfOpenCircuit" }
  | { type: "CloseCircuit" }
  /** A test send to the endpoint went out: recorded for the audit, changes nothing. */
  | ({ type: "RecordTestSend" } & EventData<"endpoint.test_sent">);

/**
 * A registry entry: absent, active or disabled, or deleted (kept for history, never revived).
 * `circuit` is its circuit breaker as recorded by the dispatchers (closed until they open it).
 */
export type EndpointState =
  | { status: "absent" }
  | ({ status: "active" | "disabled"; circuit: EndpointCircuit } & EndpointRecord)
  | ({ status: "deleted"; circuit: EndpointCircuit } & EndpointRecord);

/** Events the endpoint aggregate emits. */
export type EndpointEvent =
  | DomainEventOf<"endpoint.registered">
  | DomainEventOf<"endpoint.updated">
  | DomainEventOf<"endpoint.disabled">
  | DomainEventOf<"endpoint.deleted">
  | DomainEventOf<"endpoint.secret_rotated">
  | DomainEventOf<"endpoint.circuit_opened">
  | DomainEventOf<"endpoint.circuit_half_opened">
  | DomainEventOf<"endpoint.circuit_closed">
  | DomainEventOf<"endpoint.test_sent">;

type LiveState = Extract<EndpointState, { status: "active" | "disabled" }>;
type CircuitEvent = Extract<EndpointEvent, { type: `endpoint.circuit_${string}` }>;

const requireLive = (state: EndpointState): LiveState => {
  if (state.status === "absent" || state.status === "deleted") throw new DomainError("not_found", "endpoint not found");
  return state;
};

const recordOf = (state: LiveState | Extract<EndpointState, { status: "deleted" }>): EndpointRecord => {
  const { status: _status, circuit: _circuit, ...record } = state;
  return record;
};

const register = (command: Extract<EndpointCommand, { type: "RegisterEndpoint" }>, state: EndpointState): EndpointEvent[] => {
  if (state.status !== "absent") throw new DomainError("conflict", "endpoint already exists");
  const { type: _type, endpointId, secretKeyBytes, ...data } = command;
  assertEndpointId(endpointId);
  assertStrongSecret("endpoint", secretKeyBytes);
  const registered = compact(data);
  assertValidRecord(registered);
  return [{ type: "endpoint.registered", data: registered }];
};

const update = (changes: EndpointChanges, state: EndpointState): EndpointEvent[] => {
  const live = requireLive(state);
  const record = recordOf(live);
  const changed = diffChanges(record, live.status === "active", changes);
  if (Object.keys(changed).length === 0) return [];
  assertValidRecord(applyChanges(record, changed));
  return [{ type: "endpoint.updated", data: changed }];
};

const rotateSecret = (command: Extract<EndpointCommand, { type: "RotateSecret" }>, state: EndpointState): EndpointEvent[] => {
  requireLive(state);
  const { secret, secretKeyBytes, graceSeconds, now } = command;
  if (!EncryptedSecret.safeParse(secret).success) throw new DomainError("unprocessable", "secret must be encrypted before it is recorded");
  assertStrongSecret("endpoint", secretKeyBytes);
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_ROTATION_GRACE_SECONDS) {
    throw new DomainError("unprocessable", `graceSeconds must be a whole number from 0 to ${MAX_ROTATION_GRACE_SECONDS}`);
  }
  const at = Date.parse(now);
  if (Number.isNaN(at)) throw new DomainError("unprocessable", "now is not a valid time");
  return [{ type: "endpoint.secret_rotated", data: { secret, previousExpiresAt: new Date(at + graceSeconds * 1000).toISOString() } }];
};

const openCircuit = (command: Extract<EndpointCommand, { type: "OpenCircuit" }>, state: EndpointState): EndpointEvent[] => {
  // Already open: another dispatcher got there first; its timing stands.
  if (requireLive(state).circuit.state === "open") return [];
  const { type: _type, ...opened } = command;
  for (const field of ["halfOpenAt", "failingSince"] as const) {
    if (Number.isNaN(Date.parse(opened[field]))) throw new DomainError("unprocessable", `${field} is not a valid time`);
  }
  return [{ type: "endpoint.circuit_opened", data: opened }];
};

const decide = (command: EndpointCommand, state: EndpointState): EndpointEvent[] => {
  switch (command.type) {
    case "RegisterEndpoint":
      return register(command, state);
    case "UpdateEndpoint":
      return update(command.changes, state);
    case "DisableEndpoint":
      // Already disabled: keep the first reason, which is what the user needs to see.
      return requireLive(state).status === "disabled" ? [] : [{ type: "endpoint.disabled", data: { reason: command.reason } }];
    case "DeleteEndpoint":
      requireLive(state);
      return [{ type: "endpoint.deleted", data: {} }];
    case "RotateSecret":
      return rotateSecret(command, state);
    case "OpenCircuit":
      return openCircuit(command, state);
    case "HalfOpenCircuit":
      // Only an open circuit half-opens; a closed one has nothing to probe.
      return requireLive(state).circuit.state === "open" ? [{ type: "endpoint.circuit_half_opened", data: {} }] : [];
    case "CloseCircuit":
      return requireLive(state).circuit.state === "closed" ? [] : [{ type: "endpoint.circuit_closed", data: {} }];
    case "RecordTestSend": {
      requireLive(state);
      const { type: _type, ...sent } = command;
      return [{ type: "endpoint.test_sent", data: sent }];
    }
    default:
      return assertNever(command, "endpoint command");
  }
};

/**
 * Re-enabling (`active: true`, only ever recorded on a disabled endpoint) closes the circuit and
 * forgets the failing run: the endpoint starts afresh, with a whole disable-after period ahead.
 */
const evolveUpdated = (state: LiveState, changes: EndpointChanges): EndpointState => {
  const { disabledReason, ...record } = applyChanges(recordOf(state), changes);
  if (changes.active === true) return { status: "active", ...record, circuit: CLOSED_CIRCUIT };
  const { circuit } = state;
  if (changes.active === false) return { status: "disabled", ...record, circuit, disabledReason: DISABLED_BY_USER };
  return { status: state.status, ...record, circuit, ...(disabledReason === undefined ? {} : { disabledReason }) };
};

const evolveCircuit = (circuit: EndpointCircuit, event: CircuitEvent): EndpointCircuit => {
  switch (event.type) {
    case "endpoint.circuit_opened": {
      const { halfOpenAt, failingSince, consecutiveFailures } = event.data;
      return { state: "open", halfOpenAt, failingSince, consecutiveFailures };
    }
    case "endpoint.circuit_half_opened":
      // Probes started at halfOpenAt; the failing run goes on until one succeeds.
      return { ...circuit, state: "half_open" };
    case "endpoint.circuit_closed":
      return CLOSED_CIRCUIT;
    default:
      return assertNever(event, "circuit event");
  }
};

const evolve = (state: EndpointState, event: EndpointEvent): EndpointState => {
  if (event.type === "endpoint.registered") return { status: "active", ...event.data, circuit: CLOSED_CIRCUIT };
  // Anything else only applies to a live endpoint; the log never holds it otherwise.
  if (state.status === "absent" || state.status === "deleted") return state;
  switch (event.type) {
    case "endpoint.updated":
      return evolveUpdated(state, event.data);
    case "endpoint.disabled":
      return { ...state, status: "disabled", disabledReason: event.data.reason };
    case "endpoint.deleted":
      return { ...state, status: "deleted" };
    case "endpoint.secret_rotated":
      // Two secrets at most: a rotation during another's grace ends the older grace at once.
      return { ...state, secret: event.data.secret, previousSecret: { secret: state.secret, expiresAt: event.data.previousExpiresAt } };
    case "endpoint.circuit_opened":
    case "endpoint.circuit_half_opened":
    case "endpoint.circuit_closed":
      return { ...state, circuit: evolveCircuit(state.circuit, event) };
    case "endpoint.test_sent":
      return state;
    default:
      return assertNever(event, "endpoint event");
  }
};

/** The endpoint aggregate: a registry entry's lifecycle, with its configuration validated. */
export const endpointDecider: Decider<EndpointCommand, EndpointState, EndpointEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
