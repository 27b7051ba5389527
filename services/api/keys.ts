import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { newUlid } from "../shared/ids.js";

/**
 * Tenant API keys: `zk_<ulid>_<43 base64url chars of 32 random bytes>`. The ulid is also the key
 * id (`key_<ulid>`), so a key this process has not seen yet can be found in the event store.
 */
const KEY_FORMAT = /^zk_([0-9A-HJKMNP-TV-Z]{26})_[A-Za-z0-9_-]{43}$/;

/** How many leading characters of a key are kept to show in lists. */
export const KEY_PREFIX_LENGTH = 12;

export interface NewApiKey {
  keyId: string;
  key: string;
  keyHash: string;
  keyPrefix: string;
}

export const sha256Digest = (text: string): Buffer => createHash("sha256").update(text).digest();
export const sha256Hex = (text: string): string => sha256Digest(text).toString("hex");

export function generateApiKey(): NewApiKey {
  const id = newUlid();
  const key = `zk_${id}_${randomBytes(32).toString("base64url")}`;
  return { keyId: `key_${id}`, key, keyHash: sha256Hex(key), keyPrefix: key.slice(0, KEY_PREFIX_LENGTH) };
}

/** The key id a well-formed key names, or null. */
export function keyIdOf(key: string): string | null {
  const match = KEY_FORMAT.exec(key);
  return match ? `key_${match[1]}` : null;
}

/** Constant-time equality of two strings, compared by their sha256 digests (so lengths never leak). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256Digest(a), sha256Digest(b));
}
