import { DEFAULT_DELIVERY_POLICY, DEFAULT_RETRY_POLICY, EncryptedSecret, prefixedId, type DeliveryPolicy, type RetryPolicy } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { DomainError } from "../errors.js";
import { compact, deepEqual } from "../shared/equal.js";
import { isValidEventTypePattern } from "./patterns.js";

/**
 * What the endpoint aggregate knows of a registry entry. The id, `createdAt` and `updatedAt` live on
 * the event envelope (aggregate id, `occurredAt`), not in event data, so they are not part of it.
 */
export type EndpointRecord = EventData<"endpoint.registered"> & {
  disabledReason?: string;
  /** The secret a rotation replaced: it signs beside `secret` until `expiresAt`. */
  previousSecret?: PreviousSecret;
};

/** A replaced secret (encrypted) and when it stops signing. */
export interface PreviousSecret {
  secret: EncryptedSecret;
  expiresAt: string;
}

export { DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS } from "../../contracts/common.js";

/**
 * The secrets that sign a request sent at `now`, newest first: the current one, and the one a
 * rotation replaced while its grace lasts. Receivers accept a request when any signature verifies.
 */
export const signingSecrets = (record: Pick<EndpointRecord, "secret" | "previousSecret">, now: Date): EncryptedSecret[] => {
  const previous = record.previousSecret;
  return previous && Date.parse(previous.expiresAt) > now.getTime() ? [record.secret, previous.secret] : [record.secret];
};

/** The fields an `endpoint.updated` event may carry. */
export type EndpointChanges = EventData<"endpoint.updated">;

/** Why a user-requested `active: false` disabled the endpoint. */
export const DISABLED_BY_USER = "disabled by user";

const NULLABLE_FIELDS = ["description", "rateLimit", "retryPolicy", "deliveryPolicy", "metadata"] as const;
const CHANGE_FIELDS = ["url", "eventTypes", "active", ...NULLABLE_FIELDS] as const;

/** The endpoint's retry policy: its partial overrides on top of {@link DEFAULT_RETRY_POLICY}. */
export const effectiveRetryPolicy = (record: Pick<EndpointRecord, "retryPolicy">): RetryPolicy => ({
  ...DEFAULT_RETRY_POLICY,
  ...compact(record.retryPolicy ?? {}),
});

/** The endpoint's delivery policy: its partial overrides on top of {@link DEFAULT_DELIVERY_POLICY}. */
export const effectiveDeliveryPolicy = (record: Pick<EndpointRecord, "deliveryPolicy">): DeliveryPolicy => ({
  ...DEFAULT_DELIVERY_POLICY,
  ...compact(record.deliveryPolicy ?? {}),
});

const parseUrl = (url: string): URL | undefined => {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
};

/** Refuses (unprocessable) a record that could never be delivered to as configured. */
export const assertValidRecord = (record: EndpointRecord): void => {
  const refuse = (message: string) => {
    throw new DomainError("unprocessable", message);
  };
  const url = parseUrl(record.url);
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) refuse("url must be an absolute http or https URL");
  // Credentials in a URL would be stored and shown in reads; the signing secret authenticates.
  if (url?.username || url?.password) refuse("url must not contain credentials");
  if (record.eventTypes.length === 0) refuse("eventTypes must name at least one pattern");
  const bad = record.eventTypes.find((p) => !isValidEventTypePattern(p));
  if (bad !== undefined) refuse(`invalid event-type pattern ${JSON.stringify(bad)}`);
  const retry = effectiveRetryPolicy(record);
  if (retry.initialDelayMs > retry.maxDelayMs) refuse("retryPolicy.initialDelayMs must not exceed maxDelayMs");
  // Events must never hold a secret in plain text (API.md "Endpoint").
  if (!EncryptedSecret.safeParse(record.secret).success) refuse("secret must be encrypted before it is recorded");
};

/** Refuses an endpoint id without the `ep_` prefix. */
export const assertEndpointId = (endpointId: string): void => {
  if (!prefixedId("endpoint").safeParse(endpointId).success) {
    throw new DomainError("unprocessable", `invalid endpoint id ${JSON.stringify(endpointId)}`);
  }
};

const currentValue = (record: EndpointRecord, active: boolean, field: (typeof CHANGE_FIELDS)[number]): unknown => (field === "active" ? active : (record[field] ?? null));

/** Only the requested changes that differ from the record (null clears, deep-equal compare). */
export const diffChanges = (record: EndpointRecord, active: boolean, requested: EndpointChanges): EndpointChanges => {
  const changed: Record<string, unknown> = {};
  for (const field of CHANGE_FIELDS) {
    const next = requested[field];
    if (next !== undefined && !deepEqual(next, currentValue(record, active, field))) changed[field] = next;
  }
  return changed as EndpointChanges;
};

/** The record after `changes` (not `active`, which moves the status); `null` removes a field. */
export const applyChanges = (record: EndpointRecord, changes: EndpointChanges): EndpointRecord => {
  const next: Record<string, unknown> = { ...record };
  if (changes.url !== undefined) next.url = changes.url;
  if (changes.eventTypes !== undefined) next.eventTypes = changes.eventTypes;
  for (const field of NULLABLE_FIELDS) {
    const value = changes[field];
    if (value === null) delete next[field];
    else if (value !== undefined) next[field] = value;
  }
  return next as EndpointRecord;
};
