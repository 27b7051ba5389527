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

/** Refuses a secret whose key, as `scheme` reads it (`endpoint` for an endpoint's), is under {@link MIN_SIGNING_KEY_BYTES}. */
export function assertStrongSecret(scheme: SourceScheme | "endpoint", measured: SecretKeyBytes | undefined): void {
  const bytes = measured === undefined ? 0 : scheme === "endpoint" || scheme === "standard-webhooks" ? measured.base64 : measured.text;
  if (bytes < MIN_SIGNING_KEY_BYTES) {
    const reading = scheme === "endpoint" || scheme === "standard-webhooks" ? "decoded from the base64 after whsec_" : "of the secret's text";
    throw new DomainError("unprocessable", `secret: the signing key must be at least ${MIN_SIGNING_KEY_BYTES} bytes (${reading}); this one has ${bytes}`);
  }
}
