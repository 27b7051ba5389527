import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { DomainError } from "../errors.js";
import { buildOutboundBody, generateSecret, signPayload } from "./standard-webhooks.js";

const secretA = generateSecret(new Uint8Array(32).fill(7));
const secretB = generateSecret(Uint8Array.from({ length: 24 }, (_, i) => i));
const body = buildOutboundBody({ eventType: "invoice.paid", timestamp: "2024-05-01T12:00:00.000Z", payload: { id: 1, amount: 500 } });
// The reference verifier refuses timestamps more than 5 minutes from its own clock.
const timestamp = Math.floor(Date.now() / 1000);
const headersFor = (signature: string) => ({ "webhook-id": "msg_1", "webhook-timestamp": String(timestamp), "webhook-signature": signature });

describe("standard webhooks signing", () => {
  it("is accepted by the reference verifier", () => {
    const signature = signPayload({ msgId: "msg_1", timestamp, body, secrets: [secretA] });
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secretA).verify(body, headersFor(signature))).toEqual(JSON.parse(body));
  });

  it("is rejected for a tampered body, id or secret", () => {
    const signature = signPayload({ msgId: "msg_1", timestamp, body, secrets: [secretA] });
    expect(() => new Webhook(secretA).verify(body.replace("500", "501"), headersFor(signature))).toThrow();
    expect(() => new Webhook(secretA).verify(body, { ...headersFor(signature), "webhook-id": "msg_2" })).toThrow();
    expect(() => new Webhook(secretB).verify(body, headersFor(signature))).toThrow();
  });

  it("signs with every secret during a rotation, each verifiable", () => {
    const signature = signPayload({ msgId: "msg_1", timestamp, body, secrets: [secretA, secretB] });
    expect(signature.split(" ")).toHaveLength(2);
    expect(() => new Webhook(secretA).verify(body, headersFor(signature))).not.toThrow();
    expect(() => new Webhook(secretB).verify(body, headersFor(signature))).not.toThrow();
  });

  it("uses the decoded key bytes, not the secret's text", () => {
    const key = Buffer.alloc(32, 7);
    const expected = createHmac("sha256", key).update(`msg_1.1700000000.${body}`).digest("base64");
    expect(signPayload({ msgId: "msg_1", timestamp: 1_700_000_000, body, secrets: [secretA] })).toBe(`v1,${expected}`);
  });

  it("refuses to sign without a secret or with a fractional timestamp", () => {
    expect(() => signPayload({ msgId: "msg_1", timestamp, body, secrets: [] })).toThrow(DomainError);
    expect(() => signPayload({ msgId: "msg_1", timestamp: 1.5, body, secrets: [secretA] })).toThrow(DomainError);
  });
});

describe("generateSecret", () => {
  it("encodes the given bytes after whsec_", () => {
    expect(secretA).toBe(`whsec_${Buffer.alloc(32, 7).toString("base64")}`);
  });

  it("takes 24 to 64 bytes only", () => {
    expect(() => generateSecret(new Uint8Array(64))).not.toThrow();
    expect(() => generateSecret(new Uint8Array(23))).toThrow(DomainError);
    expect(() => generateSecret(new Uint8Array(65))).toThrow(DomainError);
  });
});

describe("buildOutboundBody", () => {
  it("writes type, timestamp and data in that order", () => {
    expect(body).toBe('{"type":"invoice.paid","timestamp":"2024-05-01T12:00:00.000Z","data":{"id":1,"amount":500}}');
  });
});
