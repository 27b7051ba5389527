import type { DomainEventOf } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { assertNever } from "../shared/exhaustive.js";

/** Commands the tenant aggregate accepts. */
export type TenantCommand = { type: "CreateTenant"; name: string };

/** A tenant is either not yet created or active. */
export type TenantState = { status: "absent" } | { status: "active"; name: string };

/** Events the tenant aggregate emits. */
export type TenantEvent = DomainEventOf<"tenant.created">;

const decide = (command: TenantCommand, state: TenantState): TenantEvent[] => {
  switch (command.type) {
    case "CreateTenant":
      if (state.status !== "absent") throw new DomainError("conflict", "tenant already exists");
      return [{ type: "tenant.created", data: { name: command.name } }];
    default:
      return assertNever(command.type, "tenant command");
  }
};

const evolve = (state: TenantState, event: TenantEvent): TenantState => {
  switch (event.type) {
    case "tenant.created":
      return { status: "active", name: event.data.name };
    default:
      return assertNever(event.type, "tenant event");
  }
};

/** The tenant aggregate: created once, never twice. */
export const tenantDecider: Decider<TenantCommand, TenantState, TenantEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
