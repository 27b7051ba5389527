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
    expect(() => createSecretBox("abcd")).toThrow(/32 bytes/);
  });
});
