import { EncryptedSecret, prefixedId } from "../../contracts/common.js";
import type { DomainEventOf, EventData } from "../../contracts/events.js";
import { SIGNED_CONTENT_PLACEHOLDERS, type HmacConfig } from "../../contracts/inbound.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { assertStrongSecret, type SecretKeyBytes } from "../signing/secret-strength.js";
import { compact, deepEqual } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";

/** What the source aggregate knows of a source; id and times live on the envelopes. */
export type SourceRecord = EventData<"source.created">;

/** The fields a `source.updated` may carry. */
export type SourceChanges = EventData<"source.updated">;

/**
 * Commands the source aggregate accepts. Secrets arrive already encrypted (`enc:v1:…`), with
 * `secretKeyBytes` saying how long their key is, so a weak one is refused here.
 */
export type SourceCommand =
  | ({ type: "CreateSource"; sourceId: string; secretKeyBytes: SecretKeyBytes } & SourceRecord)
  | { type: "UpdateSource"; changes: SourceChanges; secretKeyBytes?: SecretKeyBytes }
  | { type: "DeleteSource" }
  | ({ type: "RejectSignature" } & Omit<EventData<"signature.rejected">, "scheme">);

/** A source: absent, active, or deleted (kept for history, never revived). */
export type SourceState = { status: "absent" } | ({ status: "active" } & SourceRecord) | ({ status: "deleted" } & SourceRecord);

/** Events the source aggregate emits. */
export type SourceEvent = DomainEventOf<"source.created"> | DomainEventOf<"source.updated"> | DomainEventOf<"source.deleted"> | DomainEventOf<"signature.rejected">;

type ActiveState = Extract<SourceState, { status: "active" }>;

const refuse = (message: string): never => {
  throw new DomainError("unprocessable", message);
};

/** Refuses a `signedContent` template that signs no body, names an unknown placeholder, or leaves a configured header unsigned. */
const assertValidHmac = (hmac: HmacConfig): void => {
  const template = hmac.signedContent ?? "{body}";
  if (!template.includes("{body}")) refuse("hmac.signedContent must include {body}");
  const unknown = (template.match(/\{[^}]*\}/g) ?? []).find((p) => !(SIGNED_CONTENT_PLACEHOLDERS as readonly string[]).includes(p));
  if (unknown !== undefined) refuse(`hmac.signedContent has an unknown placeholder ${unknown}`);
  if (template.includes("{timestamp}") && hmac.timestampHeader === undefined) refuse("hmac.signedContent signs {timestamp}: set hmac.timestampHeader");
  if (template.includes("{id}") && hmac.idHeader === undefined) refuse("hmac.signedContent signs {id}: set hmac.idHeader");
  if (hmac.toleranceSeconds !== undefined && hmac.timestampHeader === undefined) refuse("hmac.toleranceSeconds needs hmac.timestampHeader");
  // Headers outside the signature could be rewritten on a captured request: a fresh id replays it, a fresh time means nothing.
  if (hmac.idHeader !== undefined && !template.includes("{id}")) refuse("hmac.idHeader is not signed: add {id} to hmac.signedContent, or drop idHeader");
  if (hmac.timestampHeader !== undefined && !template.includes("{timestamp}")) {
    refuse("hmac.timestampHeader is not signed: add {timestamp} to hmac.signedContent, or drop timestampHeader");
  }
};

/** Refuses a record that could never verify a request as configured. */
export const assertValidSource = (record: SourceRecord): void => {
  if (record.name.trim().length === 0) refuse("name must not be empty");
  // Events must never hold a secret in plain text (API.md "Inbound sources").
  if (!EncryptedSecret.safeParse(record.secret).success) refuse("secret must be encrypted before it is recorded");
  if ((record.scheme === "hmac") !== (record.hmac !== undefined)) refuse("hmac settings belong to, and only to, scheme hmac");
  if (record.hmac) assertValidHmac(record.hmac);
};

const requireActive = (state: SourceState): ActiveState => {
  if (state.status !== "active") throw new DomainError("not_found", "source not found");
  return state;
};

const recordOf = ({ status: _status, ...record }: ActiveState): SourceRecord => record;

/** The record after `changes`; `eventTypeFrom: null` removes it. */
export const applySourceChanges = (record: SourceRecord, changes: SourceChanges): SourceRecord => {
  const { eventTypeFrom, ...rest } = changes;
  const next: SourceRecord = { ...record, ...compact(rest) };
  if (eventTypeFrom === null) delete next.eventTypeFrom;
  else if (eventTypeFrom !== undefined) next.eventTypeFrom = eventTypeFrom;
  return next;
};

/** Only the requested changes that differ; a new secret always counts (sealed values never compare). */
const diff = (record: SourceRecord, requested: SourceChanges): SourceChanges => {
  const changed: SourceChanges = {};
  if (requested.name !== undefined && requested.name !== record.name) changed.name = requested.name;
  if (requested.secret !== undefined) changed.secret = requested.secret;
  if (requested.hmac !== undefined && !deepEqual(requested.hmac, record.hmac)) changed.hmac = requested.hmac;
  const from = requested.eventTypeFrom;
  if (from !== undefined && !deepEqual(from, record.eventTypeFrom ?? null)) changed.eventTypeFrom = from;
  return changed;
};

const create = (command: Extract<SourceCommand, { type: "CreateSource" }>, state: SourceState): SourceEvent[] => {
  if (state.status !== "absent") throw new DomainError("conflict", "source already exists");
  const { type: _type, sourceId, secretKeyBytes, ...data } = command;
  if (!prefixedId("source").safeParse(sourceId).success) refuse(`invalid source id ${JSON.stringify(sourceId)}`);
  assertStrongSecret(data.scheme, secretKeyBytes);
  const created = compact(data);
  assertValidSource(created);
  return [{ type: "source.created", data: created }];
};

const update = (changes: SourceChanges, secretKeyBytes: SecretKeyBytes | undefined, state: SourceState): SourceEvent[] => {
  const record = recordOf(requireActive(state));
  if (changes.secret !== undefined) assertStrongSecret(record.scheme, secretKeyBytes);
  const changed = diff(record, changes);
  if (Object.keys(changed).length === 0) return [];
  assertValidSource(applySourceChanges(record, changed));
  return [{ type: "source.updated", data: changed }];
};

const decide = (command: SourceCommand, state: SourceState): SourceEvent[] => {
  switch (command.type) {
    case "CreateSource":
      return create(command, state);
    case "UpdateSource":
      return update(command.changes, command.secretKeyBytes, state);
    case "DeleteSource":
      requireActive(state);
      return [{ type: "source.deleted", data: {} }];
    case "RejectSignature": {
      // The scheme comes from the state: the record says what was actually checked.
      const { scheme } = requireActive(state);
      const { type: _type, ...rejected } = command;
      return [{ type: "signature.rejected", data: compact({ ...rejected, scheme }) }];
    }
    default:
      return assertNever(command, "source command");
  }
};

const evolve = (state: SourceState, event: SourceEvent): SourceState => {
  if (event.type === "source.created") return { status: "active", ...event.data };
  if (state.status !== "active") return state;
  switch (event.type) {
    case "source.updated":
      return { status: "active", ...applySourceChanges(recordOf(state), event.data) };
    case "source.deleted":
      return { ...state, status: "deleted" };
    case "signature.rejected":
      // A refused request changes nothing about the source; the event is its record.
      return state;
    default:
      return assertNever(event, "source event");
  }
};

/** The source aggregate: an inbound source's configuration, and every request it refused. */
export const sourceDecider: Decider<SourceCommand, SourceState, SourceEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
