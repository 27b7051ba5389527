import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { EncryptedSecret } from "../../contracts/common.js";

/**
 * Encrypts endpoint secrets at rest with AES-256-GCM under a master key, as
 * `enc:v1:<keyId>:<base64 iv|tag|ciphertext>`. The key id (a digest of the key) names which key
 * sealed a value. Master-key rotation: the current key seals; previous keys only open values they
 * sealed (events are immutable, so a secret sealed under an old key stays so until the endpoint's
 * secret is rotated; only then may the old key be retired).
 */
export interface SecretBox {
  encrypt(plain: string): EncryptedSecret;
  /** Opens a value sealed under the current or a previous key; throws naming an unknown key id. */
  decrypt(sealed: EncryptedSecret): string;
  /** The id of the current key, the one that seals. */
  keyId: string;
}

/** Used only when ZEN_MASTER_KEY is unset, so a laptop runs with no setup; never in production. */
const DEVELOPMENT_KEY_SEED = "zen-webhooks development master key: set ZEN_MASTER_KEY in production";

/** Decrypted secrets kept in memory, so a busy endpoint is not decrypted on every attempt. */
const MAX_CACHED_SECRETS = 10_000;

/** The id a sealed value names its key by: the first 12 hex digits of the key's sha256. */
export const masterKeyId = (key: Buffer): string => createHash("sha256").update(key).digest("hex").slice(0, 12);

/**
 * `masterKey` is 32 bytes as base64 or hex; undefined selects the development key. `previousKeys`
 * (same encodings) open values sealed before a master-key rotation and never seal anything.
 */
export function createSecretBox(masterKey: string | undefined, previousKeys: readonly string[] = []): SecretBox {
  const key = masterKey === undefined ? createHash("sha256").update(DEVELOPMENT_KEY_SEED).digest() : parseKey(masterKey, "ZEN_MASTER_KEY");
  const keyId = masterKeyId(key);
  const keys = new Map<string, Buffer>([[keyId, key]]);
  for (const previous of previousKeys) {
    const old = parseKey(previous, "each of ZEN_MASTER_KEYS_PREVIOUS");
    if (!keys.has(masterKeyId(old))) keys.set(masterKeyId(old), old);
  }
  const opened = new Map<string, string>();
  return {
    keyId,
    encrypt(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
      const ciphertext = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return `enc:v1:${keyId}:${Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("base64")}`;
    },
    decrypt(sealed) {
      const cached = opened.get(sealed);
      if (cached !== undefined) return cached;
      const [, , sealedKeyId, payload] = sealed.split(":");
      const sealingKey = sealedKeyId === undefined ? undefined : keys.get(sealedKeyId);
      if (sealingKey === undefined || payload === undefined) {
        throw new Error(`secret sealed with unknown key id ${sealedKeyId}: neither ZEN_MASTER_KEY nor any of ZEN_MASTER_KEYS_PREVIOUS`);
      }
      const bytes = Buffer.from(payload, "base64");
      const decipher = createDecipheriv("aes-256-gcm", sealingKey, bytes.subarray(0, 12), { authTagLength: 16 });
      decipher.setAuthTag(bytes.subarray(12, 28));
      const plain = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8");
      if (opened.size >= MAX_CACHED_SECRETS) opened.clear();
      opened.set(sealed, plain);
      return plain;
    },
  };
}

function parseKey(text: string, name: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64");
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes, as 64 hex digits or base64`);
  return key;
}
