import type { Scope } from "../../contracts/common.js";
import type { DomainEventOf } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { assertNever } from "../shared/exhaustive.js";

/** Commands the API key aggregate accepts. The key itself never reaches the domain, only its hash. */
export type ApiKeyCommand =
  | { type: "CreateApiKey"; name: string; scopes: Scope[]; keyHash: string; keyPrefix: string }
  | { type: "RevokeApiKey" }
  /** The key authenticated a request at `at` (ISO time, passed in: deciders read no clock). */
  | { type: "RecordApiKeyUse"; at: string };

/** What is known of a key once created. */
export interface ApiKeyRecord {
  name: string;
  scopes: Scope[];
  keyHash: string;
  keyPrefix: string;
  /** When the key last authenticated a request, to the hour (see `apikey.used`). */
  lastUsedAt?: string;
}

/** An API key: absent, active, or revoked (for good). */
export type ApiKeyState = { status: "absent" } | ({ status: "active" | "revoked" } & ApiKeyRecord);

/** Events the API key aggregate emits. */
export type ApiKeyEvent = DomainEventOf<"apikey.created"> | DomainEventOf<"apikey.revoked"> | DomainEventOf<"apikey.used">;

const decide = (command: ApiKeyCommand, state: ApiKeyState): ApiKeyEvent[] => {
  switch (command.type) {
    case "CreateApiKey": {
      if (state.status !== "absent") throw new DomainError("conflict", "api key already exists");
      const { name, scopes, keyHash, keyPrefix } = command;
      return [{ type: "apikey.created", data: { name, scopes, keyHash, keyPrefix } }];
    }
    case "RevokeApiKey":
      if (state.status === "absent") throw new DomainError("not_found", "api key not found");
      // Revoking twice is a no-op, so a retried DELETE answers 204 again.
      return state.status === "revoked" ? [] : [{ type: "apikey.revoked", data: {} }];
    case "RecordApiKeyUse":
      if (state.status === "absent") throw new DomainError("not_found", "api key not found");
      // A use racing the revoke, or older than what is recorded, changes nothing.
      if (state.status === "revoked" || (state.lastUsedAt !== undefined && state.lastUsedAt >= command.at)) return [];
      return [{ type: "apikey.used", data: { usedAt: command.at } }];
    default:
      return assertNever(command, "api key command");
  }
};

const evolve = (state: ApiKeyState, event: ApiKeyEvent): ApiKeyState => {
  switch (event.type) {
    case "apikey.created":
      return { status: "active", ...event.data };
    case "apikey.revoked":
      return state.status === "absent" ? state : { ...state, status: "revoked" };
    case "apikey.used":
      return state.status === "absent" ? state : { ...state, lastUsedAt: event.data.usedAt };
    default:
      return assertNever(event, "api key event");
  }
};

/** The API key aggregate: created once, revoked at most once. */
export const apiKeyDecider: Decider<ApiKeyCommand, ApiKeyState, ApiKeyEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
