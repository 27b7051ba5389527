import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSecretBox } from "./secret-box.js";

describe("secret box", () => {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

  it("seals with AES-256-GCM under a key id and opens what it sealed", () => {
    const box = createSecretBox(randomBytes(32).toString("hex"));
    const sealed = box.encrypt(secret);
    expect(sealed).toMatch(new RegExp(`^enc:v1:${box.keyId}:`));
    expect(sealed).not.toContain(secret.slice(6));
    expect(box.decrypt(sealed)).toBe(secret);
    expect(box.encrypt(secret)).not.toBe(sealed);
  });

  it("refuses a value sealed under another key, and a tampered one", () => {
    const box = createSecretBox(randomBytes(32).toString("base64"));
    const other = createSecretBox(randomBytes(32).toString("hex"));
    expect(() => other.decrypt(box.encrypt(secret))).toThrow(/unknown key id/);
    const sealed = box.encrypt(secret);
    const bytes = Buffer.from(sealed.split(":")[3]!, "base64");
    bytes[bytes.length - 1]! ^= 1;
    expect(() => box.decrypt(`enc:v1:${box.keyId}:${bytes.toString("base64")}`)).toThrow();
  });

  it("refuses a master key that is not 32 bytes", () => {
    expect(() => createSecretBox("abcd")).toThrow(/ZEN_MASTER_KEY must be 32 bytes/);
    expect(() => createSecretBox(randomBytes(32).toString("hex"), ["abcd"])).toThrow(/ZEN_MASTER_KEYS_PREVIOUS must be 32 bytes/);
  });

  describe("master-key rotation", () => {
    const oldKey = randomBytes(32).toString("hex");
    const newKey = randomBytes(32).toString("base64");

    it("opens a value sealed under the previous key after rotation, and seals only under the new one", () => {
      const before = createSecretBox(oldKey);
      const sealedBefore = before.encrypt(secret);
      const after = createSecretBox(newKey, [oldKey]);
      expect(after.keyId).not.toBe(before.keyId);
      expect(after.decrypt(sealedBefore)).toBe(secret);
      const sealedAfter = after.encrypt(secret);
      expect(sealedAfter).toMatch(new RegExp(`^enc:v1:${after.keyId}:`));
      // The old key cannot open what the new one sealed: it only ever reads.
      expect(() => before.decrypt(sealedAfter)).toThrow(/unknown key id/);
    });

    it("fails clearly on a key id it does not hold, e.g. once the old key is dropped", () => {
      const sealed = createSecretBox(oldKey).encrypt(secret);
      const oldKeyId = sealed.split(":")[2]!;
      const dropped = createSecretBox(newKey, [randomBytes(32).toString("hex")]);
      expect(() => dropped.decrypt(sealed)).toThrow(new RegExp(`unknown key id ${oldKeyId}: neither ZEN_MASTER_KEY nor any of ZEN_MASTER_KEYS_PREVIOUS`));
    });

    it("accepts the current key among the previous ones", () => {
      const box = createSecretBox(newKey, [newKey, oldKey]);
      expect(box.decrypt(box.encrypt(secret))).toBe(secret);
    });
  });
});
