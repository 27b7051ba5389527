import type { DomainEventOf, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { compact } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";
import {
  applyChanges,
  assertEndpointId,
  assertValidRecord,
  diffChanges,
  DISABLED_BY_USER,
  type EndpointChanges,
  type EndpointRecord,
} from "./record.js";

export {
  DISABLED_BY_USER,
  effectiveDeliveryPolicy,
  effectiveRetryPolicy,
  type EndpointChanges,
  type EndpointRecord,
} from "./record.js";

/** Commands the endpoint aggregate accepts. `secret` is already encrypted (`enc:v1:…`). */
export type EndpointCommand =
  | ({ type: "RegisterEndpoint"; endpointId: string } & EventData<"endpoint.registered">)
  | { type: "UpdateEndpoint"; changes: EndpointChanges }
  | { type: "DisableEndpoint"; reason: string }
  | { type: "DeleteEndpoint" };

/** A registry entry: absent, active or disabled, or deleted (kept for history, never revived). */
export type EndpointState =
  | { status: "absent" }
  | ({ status: "active" | "disabled" } & EndpointRecord)
  | ({ status: "deleted" } & EndpointRecord);

/** Events the endpoint aggregate emits. */
export type EndpointEvent =
  | DomainEventOf<"endpoint.registered">
  | DomainEventOf<"endpoint.updated">
  | DomainEventOf<"endpoint.disabled">
  | DomainEventOf<"endpoint.deleted">;

type LiveState = Extract<EndpointState, { status: "active" | "disabled" }>;

const requireLive = (state: EndpointState): LiveState => {
  if (state.status === "absent" || state.status === "deleted") throw new DomainError("not_found", "endpoint not found");
  return state;
};

const recordOf = (state: LiveState | Extract<EndpointState, { status: "deleted" }>): EndpointRecord => {
  const { status: _status, ...record } = state;
  return record;
};

const register = (command: Extract<EndpointCommand, { type: "RegisterEndpoint" }>, state: EndpointState): EndpointEvent[] => {
  if (state.status !== "absent") throw new DomainError("conflict", "endpoint already exists");
  const { type: _type, endpointId, ...data } = command;
  assertEndpointId(endpointId);
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
    default:
      return assertNever(command, "endpoint command");
  }
};

const evolveUpdated = (state: LiveState, changes: EndpointChanges): EndpointState => {
  const { disabledReason, ...record } = applyChanges(recordOf(state), changes);
  if (changes.active === true) return { status: "active", ...record };
  if (changes.active === false) return { status: "disabled", ...record, disabledReason: DISABLED_BY_USER };
  return { status: state.status, ...record, ...(disabledReason === undefined ? {} : { disabledReason }) };
};

const evolve = (state: EndpointState, event: EndpointEvent): EndpointState => {
  if (event.type === "endpoint.registered") return { status: "active", ...event.data };
  // Anything else only applies to a live endpoint; the log never holds it otherwise.
  if (state.status === "absent" || state.status === "deleted") return state;
  switch (event.type) {
    case "endpoint.updated":
      return evolveUpdated(state, event.data);
    case "endpoint.disabled":
      return { ...state, status: "disabled", disabledReason: event.data.reason };
    case "endpoint.deleted":
      return { ...state, status: "deleted" };
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
