import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { HmacConfig } from "../../contracts/inbound.js";
import { anyEqual, checkTimestamp, decodeSignature, signedParts, verifyInbound, type InboundHeaders, type VerifyInput } from "./verify.js";

const NOW = 1_700_000_000;
const body = Buffer.from('{"type":"invoice.paid","id":"evt_1"}');
const secret = "shared-secret-0123456789";
const hex = (text: string | Buffer, key = secret) => createHmac("sha256", key).update(text).digest("hex");
const b64 = (text: string | Buffer, key = secret) => createHmac("sha256", key).update(text).digest("base64");

const input = (scheme: VerifyInput["scheme"], headers: InboundHeaders, extra: Partial<VerifyInput> = {}): VerifyInput => ({
  scheme,
  secret,
  request: { headers, body, nowSeconds: NOW },
  ...extra,
});
const reason = (v: ReturnType<typeof verifyInbound>) => (v.ok ? "ok" : v.reason);

describe("timestamps", () => {
  it("accepts within the tolerance either way and refuses stale and future ones", () => {
    expect(checkTimestamp(String(NOW - 300), NOW)).toBeUndefined();
    expect(checkTimestamp(String(NOW + 300), NOW)).toBeUndefined();
    expect(checkTimestamp(String(NOW - 301), NOW)).toBe("stale_timestamp");
    expect(checkTimestamp(String(NOW + 301), NOW)).toBe("future_timestamp");
    expect(checkTimestamp(String(NOW - 61), NOW, 60)).toBe("stale_timestamp");
    expect(checkTimestamp(undefined, NOW)).toBe("missing_timestamp");
    expect(checkTimestamp("12abc", NOW)).toBe("malformed_signature");
  });
});

describe("comparison", () => {
  it("decodes strictly and compares only equal lengths", () => {
    expect(decodeSignature("zz", "hex")).toBeUndefined();
    expect(decodeSignature("abc", "hex")).toBeUndefined();
    expect(decodeSignature("a$b=", "base64")).toBeUndefined();
    expect(decodeSignature("q80=", "base64")).toEqual(Buffer.from([0xab, 0xcd]));
    expect(anyEqual(Buffer.from("ab"), [Buffer.from("a"), Buffer.from("ab")])).toBe(true);
    expect(anyEqual(Buffer.from("ab"), [Buffer.from("abc"), Buffer.from("ac")])).toBe(false);
  });

  it("builds a template's signed bytes around the raw body", () => {
    expect(Buffer.concat(signedParts("{timestamp}.{body}", body, { timestamp: "5" }).map((p) => Buffer.from(p))).toString()).toBe(`5.${body}`);
  });
});

describe("standard-webhooks", () => {
  const key = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
  const signed = (at: number, payload = body) => {
    const signature = new Webhook(key).sign("msg_1", new Date(at * 1000), payload.toString());
    return { "webhook-id": "msg_1", "webhook-timestamp": String(at), "webhook-signature": `v1,bogus ${signature}` };
  };
  it("accepts what the reference library signs, among other signatures", () => {
    expect(verifyInbound(input("standard-webhooks", signed(NOW), { secret: key }))).toMatchObject({ ok: true });
  });
  it.each([
    ["a stale timestamp", signed(NOW - 301), "stale_timestamp"],
    ["a future timestamp", signed(NOW + 301), "future_timestamp"],
    ["a tampered body", signed(NOW, Buffer.from("{}")), "signature_mismatch"],
    ["no signature", { "webhook-id": "msg_1", "webhook-timestamp": String(NOW) }, "missing_signature"],
    ["no v1 signature", { ...signed(NOW), "webhook-signature": "v2,abc" }, "malformed_signature"],
  ])("refuses %s", (_, headers, why) => {
    expect(reason(verifyInbound(input("standard-webhooks", headers as InboundHeaders, { secret: key })))).toBe(why);
  });
});

describe("provider schemes", () => {
  const stripeHeader = (t: number, payload: Buffer | string = body) => ({ "stripe-signature": `t=${t},v1=${hex(`${t}.${payload}`)},v0=ignored` });
  const slackHeaders = (t: number, key = secret) => ({ "x-slack-request-timestamp": String(t), "x-slack-signature": `v0=${hex(`v0:${t}:${body}`, key)}` });
  it.each([
    ["github", { "x-hub-signature-256": `sha256=${hex(body)}` }, "ok"],
    ["github", { "x-hub-signature-256": `sha256=${hex("other")}` }, "signature_mismatch"],
    ["github", { "x-hub-signature-256": hex(body) }, "malformed_signature"],
    ["github", {}, "missing_signature"],
    ["stripe", stripeHeader(NOW), "ok"],
    ["stripe", stripeHeader(NOW - 301), "stale_timestamp"],
    ["stripe", stripeHeader(NOW + 301), "future_timestamp"],
    ["stripe", stripeHeader(NOW, "{}"), "signature_mismatch"],
    ["stripe", { "stripe-signature": `v1=${hex(body)}` }, "missing_timestamp"],
    ["slack", slackHeaders(NOW), "ok"],
    ["slack", slackHeaders(NOW, "wrong-secret"), "signature_mismatch"],
    ["slack", slackHeaders(NOW - 301), "stale_timestamp"],
    ["slack", slackHeaders(NOW + 301), "future_timestamp"],
    ["shopify", { "x-shopify-hmac-sha256": b64(body) }, "ok"],
    ["shopify", { "x-shopify-hmac-sha256": b64(body, "wrong-secret") }, "signature_mismatch"],
    ["shopify", { "x-shopify-hmac-sha256": "***" }, "malformed_signature"],
  ] as const)("%s with %j → %s", (scheme, headers, why) => {
    expect(reason(verifyInbound(input(scheme, headers)))).toBe(why);
  });
});

describe("generic hmac", () => {
  const config: HmacConfig = {
    algorithm: "sha512",
    header: "X-Sig",
    encoding: "base64",
    prefix: "sha512=",
    timestampHeader: "X-Ts",
    toleranceSeconds: 60,
    signedContent: "{timestamp}.{body}",
  };
  const sign = (t: number, key = secret) => ({ "x-ts": String(t), "x-sig": `sha512=${createHmac("sha512", key).update(`${t}.${body}`).digest("base64")}` });
  it.each([
    ["a valid signature", sign(NOW), "ok"],
    ["a wrong secret", sign(NOW, "nope"), "signature_mismatch"],
    ["a timestamp beyond its own tolerance", sign(NOW - 61), "stale_timestamp"],
    ["a future timestamp", sign(NOW + 61), "future_timestamp"],
    ["a missing prefix", { ...sign(NOW), "x-sig": "abc" }, "malformed_signature"],
    ["no timestamp", { "x-sig": sign(NOW)["x-sig"] }, "missing_timestamp"],
  ])("%s → %s", (_, headers, why) => {
    expect(reason(verifyInbound(input("hmac", headers, { hmac: config })))).toBe(why);
  });

  it("signs the body alone by default, hex-encoded", () => {
    const plain: HmacConfig = { algorithm: "sha256", header: "X-Sig", encoding: "hex" };
    expect(reason(verifyInbound(input("hmac", { "x-sig": hex(body) }, { hmac: plain })))).toBe("ok");
    expect(reason(verifyInbound(input("hmac", { "x-sig": hex(body).toUpperCase().slice(2) }, { hmac: plain })))).toBe("signature_mismatch");
  });
});

describe("the signature digest", () => {
  const digestOf = (v: ReturnType<typeof verifyInbound>) => (v.ok ? v.digest : v.reason);

  it("names the verified MAC, however the header writes it, and differs by scheme and body", () => {
    const github = digestOf(verifyInbound(input("github", { "x-hub-signature-256": `sha256=${hex(body)}` })));
    expect(github).toMatch(/^sig_[0-9a-f]{64}$/);
    expect(digestOf(verifyInbound(input("github", { "x-hub-signature-256": `sha256=${hex(body).toUpperCase()}` })))).toBe(github);
    const shopify = digestOf(verifyInbound(input("shopify", { "x-shopify-hmac-sha256": b64(body) })));
    expect(shopify).toMatch(/^sig_[0-9a-f]{64}$/);
    expect(shopify).not.toBe(github);
    const other = Buffer.from('{"type":"invoice.paid","id":"evt_2"}');
    const changed = verifyInbound({ scheme: "github", secret, request: { headers: { "x-hub-signature-256": `sha256=${hex(other)}` }, body: other, nowSeconds: NOW } });
    expect(digestOf(changed)).toMatch(/^sig_/);
    expect(digestOf(changed)).not.toBe(github);
  });

  it("stays the same when a Stripe header adds a bogus candidate to a valid one", () => {
    const v1 = hex(`${NOW}.${body.toString()}`);
    const plain = digestOf(verifyInbound(input("stripe", { "stripe-signature": `t=${NOW},v1=${v1}` })));
    expect(plain).toMatch(/^sig_/);
    expect(digestOf(verifyInbound(input("stripe", { "stripe-signature": `t=${NOW},v1=${v1},v1=${"0".repeat(64)}` })))).toBe(plain);
  });
});

describe("a secret kept from before the strength rule", () => {
  it("given a source whose stored key is empty or short, when a request signed with that very key comes, then it is refused as weak_secret", () => {
    const empty = "whsec_====";
    const emptyKey = Buffer.alloc(0);
    const swHeaders = {
      "webhook-id": "msg_1",
      "webhook-timestamp": String(NOW),
      "webhook-signature": `v1,${createHmac("sha256", emptyKey).update(`msg_1.${NOW}.${body}`).digest("base64")}`,
    };
    expect(reason(verifyInbound(input("standard-webhooks", swHeaders, { secret: empty })))).toBe("weak_secret");
    const short = "0123456789abcde"; // 15 bytes of text
    expect(reason(verifyInbound(input("github", { "x-hub-signature-256": `sha256=${hex(body, short)}` }, { secret: short })))).toBe("weak_secret");
  });

  it("given a key of exactly the least length, when a request is signed with it, then it verifies", () => {
    const least = "0123456789abcdef"; // 16 bytes of text
    expect(reason(verifyInbound(input("github", { "x-hub-signature-256": `sha256=${hex(body, least)}` }, { secret: least })))).toBe("ok");
  });
});
