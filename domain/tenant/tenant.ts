import type { TokenBucket } from "../../contracts/common.js";
import type { DomainEventOf, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { deepEqual } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";

type Limits = EventData<"tenant.limits_set">;

/** Commands the tenant aggregate accepts. */
export type TenantCommand =
  | { type: "CreateTenant"; name: string }
  | ({ type: "SetLimits" } & Limits)
  /** A test send to a bare URL went out: recorded for the audit, changes nothing. */
  | ({ type: "RecordTestSend" } & EventData<"tenant.test_sent">);

/** Limits the operator set for a tenant; absent ones take the platform's defaults. */
export interface TenantLimits {
  outbound?: TokenBucket;
  ingress?: TokenBucket;
  maxEndpoints?: number;
  maxSources?: number;
  testSendsPerMinute?: number;
  maxReplaysInFlight?: number;
  payloadBytesPerSecond?: number;
  payloadBytesPerDay?: number;
  maxLiveFeeds?: number;
  maxAttemptsInFlight?: number;
}

const LIMIT_KEYS = [
  "outbound",
  "ingress",
  "maxEndpoints",
  "maxSources",
  "testSendsPerMinute",
  "maxReplaysInFlight",
  "payloadBytesPerSecond",
  "payloadBytesPerDay",
  "maxLiveFeeds",
  "maxAttemptsInFlight",
] as const;

/** A tenant is either not yet created or active. */
export type TenantState = { status: "absent" } | { status: "active"; name: string; limits: TenantLimits };

/** The limit the operator set for a tenant, if any: undefined (the platform's default applies) for one unset or an unknown tenant. */
export const ownLimit = <K extends keyof TenantLimits>(tenant: TenantState | undefined, key: K): TenantLimits[K] | undefined =>
  tenant?.status === "active" ? tenant.limits[key] : undefined;

/** Events the tenant aggregate emits. */
export type TenantEvent = DomainEventOf<"tenant.created"> | DomainEventOf<"tenant.limits_set"> | DomainEventOf<"tenant.test_sent">;

/** Only the limits that change: `null` removes one, an equal value is no change. */
const changedLimits = (current: TenantLimits, requested: Limits): Limits => {
  const changed: Limits = {};
  for (const key of LIMIT_KEYS) {
    const next = requested[key];
    if (next !== undefined && !deepEqual(next, current[key] ?? null)) (changed as Record<string, unknown>)[key] = next;
  }
  return changed;
};

const decide = (command: TenantCommand, state: TenantState): TenantEvent[] => {
  switch (command.type) {
    case "CreateTenant":
      if (state.status !== "absent") throw new DomainError("conflict", "tenant already exists");
      return [{ type: "tenant.created", data: { name: command.name } }];
    case "SetLimits": {
      if (state.status === "absent") throw new DomainError("not_found", "tenant not found");
      const { type: _type, ...requested } = command;
      const changed = changedLimits(state.limits, requested);
      return Object.keys(changed).length === 0 ? [] : [{ type: "tenant.limits_set", data: changed }];
    }
    case "RecordTestSend": {
      if (state.status === "absent") throw new DomainError("not_found", "tenant not found");
      const { type: _type, ...sent } = command;
      return [{ type: "tenant.test_sent", data: sent }];
    }
    default:
      return assertNever(command, "tenant command");
  }
};

const evolve = (state: TenantState, event: TenantEvent): TenantState => {
  switch (event.type) {
    case "tenant.created":
      return { status: "active", name: event.data.name, limits: {} };
    case "tenant.limits_set": {
      if (state.status === "absent") return state;
      const limits: TenantLimits = { ...state.limits };
      for (const key of LIMIT_KEYS) {
        const value = event.data[key];
        if (value === null) delete limits[key];
        else if (value !== undefined) (limits as Record<string, unknown>)[key] = value;
      }
      return { ...state, limits };
    }
    case "tenant.test_sent":
      return state;
    default:
      return assertNever(event, "tenant event");
  }
};

/** The tenant aggregate: created once, with limits the operator may change. */
export const tenantDecider: Decider<TenantCommand, TenantState, TenantEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
