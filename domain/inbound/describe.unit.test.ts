import { describe, expect, it } from "vitest";
import { atPointer, describeInbound, normaliseEventType, payloadOf, type DescribeInput } from "./describe.js";

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const describeWith = (over: Partial<DescribeInput>) =>
  describeInbound({ scheme: "hmac", headers: { "content-type": "application/json" }, body: json({}), signature: "sig", ...over });

describe("payload", () => {
  it("keeps a JSON object, wraps anything else, and reads form bodies as fields", () => {
    expect(payloadOf(json({ a: 1 }), "application/json")).toEqual({ a: 1 });
    expect(payloadOf(json([1]), undefined)).toEqual({ body: [1] });
    expect(payloadOf(Buffer.from("plain"), "text/plain")).toEqual({ body: "plain" });
    expect(payloadOf(Buffer.from("command=%2Fdeploy&text=now"), "application/x-www-form-urlencoded")).toEqual({ command: "/deploy", text: "now" });
  });
});

describe("event type", () => {
  it("normalises provider types into platform event types", () => {
    expect(normaliseEventType("orders/create")).toBe("orders.create");
    expect(normaliseEventType("pull_request")).toBe("pull_request");
    expect(normaliseEventType("a b..c.")).toBe("a_b.c");
    expect(normaliseEventType("")).toBeUndefined();
    expect(normaliseEventType({})).toBeUndefined();
  });

  it("reads JSON pointers, escapes included", () => {
    expect(atPointer({ a: { "b/c": ["x", "y"] } }, "/a/b~1c/1")).toBe("y");
    expect(atPointer({ a: 1 }, "/a/b")).toBeUndefined();
  });

  it.each([
    ["github", { "x-github-event": "push" }, {}, "push"],
    ["shopify", { "x-shopify-topic": "orders/create" }, {}, "orders.create"],
    ["stripe", {}, { type: "invoice.paid" }, "invoice.paid"],
    ["standard-webhooks", {}, { type: "user.created" }, "user.created"],
    ["slack", {}, { type: "event_callback", event: { type: "app_mention" } }, "app_mention"],
    ["slack", {}, { type: "url_verification" }, "url_verification"],
    ["hmac", {}, { type: "ignored" }, "hmac.event"],
    ["github", {}, {}, "github.event"],
  ] as const)("%s: %j %j → %s", (scheme, headers, body, type) => {
    expect(describeWith({ scheme, headers: { ...headers }, body: json(body) }).eventType).toBe(type);
  });

  it("follows eventTypeFrom, header or pointer, over the scheme's place", () => {
    expect(describeWith({ scheme: "github", headers: { "x-github-event": "push", "x-kind": "k.v" }, eventTypeFrom: { header: "X-Kind" } }).eventType).toBe("k.v");
    expect(describeWith({ body: json({ meta: { kind: "order.paid" } }), eventTypeFrom: { jsonPointer: "/meta/kind" } }).eventType).toBe("order.paid");
  });
});

describe("delivery id", () => {
  it.each([
    ["standard-webhooks", { "webhook-id": "msg_1" }, {}, "msg_1"],
    ["github", { "x-github-delivery": "gh-1" }, {}, "gh-1"],
    ["stripe", {}, { id: "evt_1" }, "evt_1"],
    ["slack", {}, { event_id: "Ev1" }, "Ev1"],
    ["shopify", { "x-shopify-webhook-id": "sh-1" }, {}, "sh-1"],
  ] as const)("%s takes the provider's id", (scheme, headers, body, id) => {
    expect(describeWith({ scheme, headers: { ...headers }, body: json(body) }).deliveryId).toBe(id);
  });

  it("takes a configured id header for hmac, else a digest of the signature", () => {
    const hmac = { algorithm: "sha256", header: "X-Sig", encoding: "hex", idHeader: "X-Id" } as const;
    expect(describeWith({ hmac, headers: { "x-id": "d-1" } }).deliveryId).toBe("d-1");
    const a = describeWith({ signature: "one" }).deliveryId;
    expect(a).toMatch(/^sig_[0-9a-f]{64}$/);
    expect(describeWith({ signature: "one" }).deliveryId).toBe(a);
    expect(describeWith({ signature: "two" }).deliveryId).not.toBe(a);
  });

  it("names a Slack request without event_id by its timestamp and signature", () => {
    const at = (t: string) => describeWith({ scheme: "slack", headers: { "x-slack-request-timestamp": t }, signature: "v0=ab" }).deliveryId;
    expect(at("1")).not.toBe(at("2"));
  });
});
