import { describe, expect, it } from "vitest";
import { assertStrongSecret, measureSecret, MIN_SIGNING_KEY_BYTES } from "./secret-strength.js";

describe("signing secret strength", () => {
  it("given secrets anyone can reproduce, when measured, then their Standard Webhooks key is empty", () => {
    expect(measureSecret("whsec_====================")).toEqual({ base64: 0, text: 26 });
    expect(measureSecret("........")).toEqual({ base64: 0, text: 8 });
  });

  it("given a generated secret, when measured, then its key is the bytes it was made of", () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    expect(measureSecret(secret).base64).toBe(32);
    expect(() => assertStrongSecret("endpoint", measureSecret(secret))).not.toThrow();
  });

  it("given a key of 15 bytes, when judged, then it is refused with what was counted; 16 pass", () => {
    const fifteen = `whsec_${Buffer.alloc(15, 1).toString("base64")}`;
    expect(() => assertStrongSecret("standard-webhooks", measureSecret(fifteen))).toThrow(/at least 16 bytes .*this one has 15/);
    expect(() => assertStrongSecret("github", measureSecret("a".repeat(MIN_SIGNING_KEY_BYTES)))).not.toThrow();
    expect(() => assertStrongSecret("github", measureSecret("a".repeat(MIN_SIGNING_KEY_BYTES - 1)))).toThrow(/this one has 15/);
  });

  it("given no measure, when judged, then it is refused", () => {
    expect(() => assertStrongSecret("slack", undefined)).toThrow(/this one has 0/);
  });
});
