import { createHmac } from "node:crypto";
import { DomainError } from "../errors.js";

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/): the `webhook-signature` header is
 * `v1,<base64 HMAC-SHA256 of "{msgId}.{timestamp}.{body}">`, one per active secret, space-separated.
 */

/** The prefix of a Standard Webhooks secret; the rest is the key, base64-encoded. */
export const SECRET_PREFIX = "whsec_";

/** Bounds on a generated secret's key length, in bytes (the spec asks for 24 to 64). */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;

/** The key bytes of a secret: the base64 after `whsec_` (a bare base64 key is accepted, as the reference library does). */
export const secretKey = (secret: string): Buffer => Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");

/** What one signature covers. `timestamp` is unix seconds of this attempt. */
export interface SignInput {
  msgId: string;
  timestamp: number;
  body: string;
  /** Every secret currently valid: during a rotation, the new one and the old one. */
  secrets: readonly string[];
}

/** The `webhook-signature` header value for one request. */
export const signPayload = ({ msgId, timestamp, body, secrets }: SignInput): string => {
  if (secrets.length === 0) throw new DomainError("unprocessable", "no signing secret");
  if (!Number.isInteger(timestamp)) throw new DomainError("unprocessable", "timestamp must be whole unix seconds");
  const signed = `${msgId}.${timestamp}.${body}`;
  return secrets.map((secret) => `v1,${createHmac("sha256", secretKey(secret)).update(signed).digest("base64")}`).join(" ");
};

/** A new secret from caller-supplied random bytes (24–64 of them), so this stays deterministic. */
export const generateSecret = (randomBytes: Uint8Array): string => {
  if (randomBytes.length < SECRET_MIN_BYTES || randomBytes.length > SECRET_MAX_BYTES) {
    throw new DomainError("unprocessable", `a secret needs ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} random bytes`);
  }
  return SECRET_PREFIX + Buffer.from(randomBytes).toString("base64");
};

/** What a receiver gets as the body (API.md "Outbound requests"). */
export interface OutboundBodyInput {
  eventType: string;
  /** When the message was accepted, ISO 8601: the same on every retry. */
  timestamp: string;
  payload: Record<string, unknown>;
}

/** The outbound JSON body, keys in the order `type`, `timestamp`, `data`. */
export const buildOutboundBody = ({ eventType, timestamp, payload }: OutboundBodyInput): string => JSON.stringify({ type: eventType, timestamp, data: payload });
