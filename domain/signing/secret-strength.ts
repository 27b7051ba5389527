import type { SourceScheme } from "../../contracts/inbound.js";
import { DomainError } from "../errors.js";
import { secretKey } from "./standard-webhooks.js";

/** The least HMAC key a signing secret may give, in bytes: a shorter one can be guessed, an empty one forged by anyone. */
export const MIN_SIGNING_KEY_BYTES = 16;

/**
 * A plaintext secret's key length both ways its schemes read it: Standard Webhooks (every endpoint,
 * and `standard-webhooks` sources) decode the base64 after `whsec_`; the providers' schemes and
 * `hmac` use the text itself. Commands carry this beside the sealed secret, so a decider can judge
 * a key it never sees.
 */
export interface SecretKeyBytes {
  base64: number;
  text: number;
}

export const measureSecret = (secret: string): SecretKeyBytes => ({ base64: secretKey(secret).length, text: Buffer.byteLength(secret, "utf8") });

const readsBase64 = (scheme: SourceScheme | "endpoint") => scheme === "endpoint" || scheme === "standard-webhooks";

/** The key length of a measured secret as `scheme` reads it (`endpoint` for an endpoint's). */
const keyBytes = (scheme: SourceScheme | "endpoint", measured: SecretKeyBytes | undefined): number =>
  measured === undefined ? 0 : readsBase64(scheme) ? measured.base64 : measured.text;

/** Whether a plaintext secret gives at least {@link MIN_SIGNING_KEY_BYTES} of key as `scheme` reads it. */
export const isStrongSecret = (scheme: SourceScheme | "endpoint", secret: string): boolean => keyBytes(scheme, measureSecret(secret)) >= MIN_SIGNING_KEY_BYTES;

/** Refuses a secret whose key, as `scheme` reads it (`endpoint` for an endpoint's), is under {@link MIN_SIGNING_KEY_BYTES}. */
export function assertStrongSecret(scheme: SourceScheme | "endpoint", measured: SecretKeyBytes | undefined): void {
  const bytes = keyBytes(scheme, measured);
  if (bytes < MIN_SIGNING_KEY_BYTES) {
    const reading = readsBase64(scheme) ? "decoded from the base64 after whsec_" : "of the secret's text";
    throw new DomainError("unprocessable", `secret: the signing key must be at least ${MIN_SIGNING_KEY_BYTES} bytes (${reading}); this one has ${bytes}`);
  }
}
