import { createHmac, randomUUID } from "node:crypto";
import { ulid } from "ulidx";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { messageDecider } from "../../domain/message/message.js";
import { readAllEvents } from "../../test/support/nats.js";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import { newId } from "../shared/ids.js";
import { buildApp } from "./app.js";
import { openClaims } from "./event-ids.js";
import { INBOUND_REPLAY_TTL_MS } from "./routes/inbound.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let metrics: Metrics;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;
let key = 0;

beforeAll(async () => {
  metrics = createMetrics();
  h = await startApiHarness({ metrics });
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write", "ingest"]);
});
afterAll(() => h?.stop());

const stripe = new Stripe("sk_test_inbound_verification");
/** A well-formed secret (valid for every scheme, Standard Webhooks' base64 included) that is not the source's. */
const WRONG_SECRET = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const hmacOf = (algorithm: string, secret: string, text: string, encoding: "hex" | "base64") => createHmac(algorithm, secret).update(text).digest(encoding);

/** How one scheme's provider builds a request: the body for a delivery id, and the signed headers. */
interface Provider {
  scheme: string;
  source: Record<string, unknown>;
  timestamped: boolean;
  body: (deliveryId: string) => string;
  headers: (input: { secret: string; body: string; deliveryId: string; at: number }) => Promise<Record<string, string>>;
  eventType: string;
}

const PROVIDERS: Provider[] = [
  {
    scheme: "standard-webhooks",
    source: {},
    timestamped: true,
    body: () => JSON.stringify({ type: "user.created", data: { id: 1 } }),
    headers: async ({ secret, body, deliveryId, at }) => ({
      "webhook-id": deliveryId,
      "webhook-timestamp": String(at),
      "webhook-signature": new Webhook(secret).sign(deliveryId, new Date(at * 1000), body),
    }),
    eventType: "user.created",
  },
  {
    scheme: "github",
    source: {},
    timestamped: false,
    body: () => JSON.stringify({ ref: "refs/heads/main", commits: [] }),
    headers: async ({ secret, body, deliveryId }) => ({
      "x-github-event": "push",
      "x-github-delivery": deliveryId,
      "x-hub-signature-256": await githubSign(secret, body),
    }),
    eventType: "push",
  },
  {
    scheme: "stripe",
    source: { secret: "whsec_test_stripe_secret_0123456789" },
    timestamped: true,
    body: (deliveryId) => JSON.stringify({ id: deliveryId, object: "event", type: "invoice.paid", data: { object: { id: "in_1" } } }),
    headers: async ({ secret, body, at }) => ({ "stripe-signature": stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp: at }) }),
    eventType: "invoice.paid",
  },
  {
    scheme: "slack",
    source: { secret: "8f742231b10e8888abcd99yyyzzz85a5" },
    timestamped: true,
    body: (deliveryId) => JSON.stringify({ type: "event_callback", event_id: deliveryId, event: { type: "app_mention", text: "hi" } }),
    // Slack's published scheme: v0=hex(HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")).
    headers: async ({ secret, body, at }) => ({
      "x-slack-request-timestamp": String(at),
      "x-slack-signature": `v0=${hmacOf("sha256", secret, `v0:${at}:${body}`, "hex")}`,
    }),
    eventType: "app_mention",
  },
  {
    scheme: "shopify",
    source: { secret: "shpss_test_client_secret_0123" },
    timestamped: false,
    body: () => JSON.stringify({ id: 820982911946154500, email: "jon@example.com" }),
    // Shopify's published scheme: base64(HMAC-SHA256(client secret, raw body)).
    headers: async ({ secret, body, deliveryId }) => ({
      "x-shopify-topic": "orders/create",
      "x-shopify-webhook-id": deliveryId,
      "x-shopify-hmac-sha256": hmacOf("sha256", secret, body, "base64"),
    }),
    eventType: "orders.create",
  },
  {
    scheme: "hmac",
    source: {
      hmac: {
        algorithm: "sha512",
        header: "X-Acme-Signature",
        encoding: "base64",
        prefix: "sha512=",
        timestampHeader: "X-Acme-Timestamp",
        idHeader: "X-Acme-Delivery",
        signedContent: "{id}.{timestamp}.{body}",
      },
      eventTypeFrom: { jsonPointer: "/event/kind" },
    },
    timestamped: true,
    body: () => JSON.stringify({ event: { kind: "shipment.sent" }, n: 1 }),
    headers: async ({ secret, body, deliveryId, at }) => ({
      "x-acme-timestamp": String(at),
      "x-acme-delivery": deliveryId,
      "x-acme-signature": `sha512=${hmacOf("sha512", secret, `${deliveryId}.${at}.${body}`, "base64")}`,
    }),
    eventType: "shipment.sent",
  },
];

/**
 * Each request from an address of its own (loopback) unless one is given: the per-address budget of
 * unverified requests is only what the tests that name an address are about.
 */
let addresses = 0;
const freshAddress = () => `127.${(++addresses >> 16) & 255}.${(addresses >> 8) & 255}.${addresses & 255}`;
const inbound = (path: string, body: string, headers: Record<string, string>, app = h.app, remoteAddress = freshAddress()) =>
  app.inject({ method: "POST", url: path, payload: body, headers: { "content-type": "application/json", ...headers }, remoteAddress });

async function createSource(provider: Provider) {
  const res = await h.call({
    method: "POST",
    url: "/v1/webhooks/sources",
    token: t.key,
    tenantId: t.tenantId,
    body: { name: provider.scheme, scheme: provider.scheme, ...provider.source },
    headers: { "idempotency-key": `src-${++key}` },
  });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: string; secret: string; inboundPath: string };
}

const rejectionsOf = async (sourceId: string) =>
  (await readAllEvents(h.streams, h.streams.topology))
    .filter((e) => e.envelope.aggregateId === sourceId && e.envelope.type === "signature.rejected")
    .map((e) => ({ ...e.envelope, data: e.envelope.data as { reason: string; scheme: string; deliveryId?: string } }));

const failures = async (scheme: string) => (await metrics.signatureFailures.get()).values.filter((v) => v.labels.scheme === scheme).reduce((sum, v) => sum + v.value, 0);

describe.each(PROVIDERS)("inbound $scheme", (provider) => {
  it("accepts a correctly signed request once; refuses tampering, a wrong secret, bad timestamps and replays", async () => {
    const source = await createSource(provider);
    const before = await failures(provider.scheme);
    const deliveryId = `dlv-${randomUUID()}`;
    const body = provider.body(deliveryId);
    const signed = await provider.headers({ secret: source.secret, body, deliveryId, at: nowSeconds() });

    const accepted = await inbound(source.inboundPath, body, signed);
    expect(accepted.statusCode).toBe(202);
    const { messageId, status } = accepted.json();
    expect(status).toBe("accepted");
    const stored = await h.deps.store.load({ tenantId: t.tenantId, aggregateType: "message", aggregateId: messageId }, messageDecider, { fresh: true });
    expect(stored.state).toMatchObject({ status: "received", eventType: provider.eventType, eventId: deliveryId, sourceId: source.id, payload: JSON.parse(body) });

    const refusals: Array<[string, string, Record<string, string>]> = [
      ["replayed", body, signed],
      ["signature_mismatch", body.replace("}", ',"tampered":true}'), signed],
      ["signature_mismatch", body, await provider.headers({ secret: WRONG_SECRET, body, deliveryId: `dlv-${randomUUID()}`, at: nowSeconds() })],
    ];
    if (provider.timestamped) {
      const fresh = () => `dlv-${randomUUID()}`;
      const stale = fresh();
      const future = fresh();
      refusals.push([
        "stale_timestamp",
        provider.body(stale),
        await provider.headers({ secret: source.secret, body: provider.body(stale), deliveryId: stale, at: nowSeconds() - 600 }),
      ]);
      refusals.push([
        "future_timestamp",
        provider.body(future),
        await provider.headers({ secret: source.secret, body: provider.body(future), deliveryId: future, at: nowSeconds() + 600 }),
      ]);
      // The same delivery signed again a moment later: a new signature, still the same delivery.
      refusals.push(["replayed", body, await provider.headers({ secret: source.secret, body, deliveryId, at: nowSeconds() + 1 })]);
    }
    for (const [reason, refusedBody, headers] of refusals) {
      const res = await inbound(source.inboundPath, refusedBody, headers);
      expect({ reason, status: res.statusCode, code: res.json().error?.code }).toEqual({ reason, status: 401, code: "unauthorized" });
    }

    const rejected = await rejectionsOf(source.id);
    expect(rejected.map((e) => e.data.reason).sort()).toEqual(refusals.map(([reason]) => reason).sort());
    for (const event of rejected) {
      expect(event.data.scheme).toBe(provider.scheme);
      expect(event.actor).toEqual({ kind: "system", id: `inbound:${source.id}` });
    }
    const recorded = JSON.stringify(rejected) + h.logLines.join("");
    expect(recorded).not.toContain(source.secret);
    // Never a signature: the headers that carry one, by whatever name.
    const signatures = refusals.flatMap(([, , headers]) =>
      Object.entries(headers)
        .filter(([name]) => /signature|hmac/.test(name))
        .map(([, value]) => value),
    );
    for (const signature of signatures) expect(recorded).not.toContain(signature);
    expect(await failures(provider.scheme)).toBe(before + refusals.length);
  });
});

describe("inbound intake", () => {
  it("refuses an unsigned request, and answers unknown, malformed and deleted sources with a bare 404", async () => {
    const source = await createSource(PROVIDERS[1]!);
    const unsigned = await inbound(source.inboundPath, "{}", {});
    expect(unsigned.statusCode).toBe(401);
    expect((await rejectionsOf(source.id)).map((e) => e.data.reason)).toEqual(["missing_signature"]);

    const other = await createTenantWithKey(h, ["webhooks:read"], "Other");
    for (const path of [
      `/v1/inbound/${t.tenantId}/src_01HZZZZZZZZZZZZZZZZZZZZZZZ`,
      `/v1/inbound/${other.tenantId}/${source.id}`,
      `/v1/inbound/ten_nope/${source.id}`,
      `/v1/inbound/${t.tenantId}/not-a-source`,
    ]) {
      const res = await inbound(path, "{}", {});
      expect({ path, status: res.statusCode, body: res.json() }).toEqual({
        path,
        status: 404,
        body: { error: { code: "not_found", message: "not found", requestId: expect.any(String) } },
      });
    }

    const deleted = await h.call({
      method: "DELETE",
      url: `/v1/webhooks/sources/${source.id}`,
      token: t.key,
      tenantId: t.tenantId,
      headers: { "idempotency-key": `del-${++key}` },
    });
    expect(deleted.statusCode).toBe(204);
    const body = "{}";
    const afterDelete = await inbound(source.inboundPath, body, { "x-hub-signature-256": await githubSign(source.secret, body) });
    expect(afterDelete.statusCode).toBe(404);
  });

  it("verifies the exact bytes of any media type, and leaves JSON parsing elsewhere as it was", async () => {
    const source = await createSource(PROVIDERS[1]!);
    const form = "payload=%7B%22a%22%3A1%7D&x=%20y";
    const res = await inbound(source.inboundPath, form, {
      "content-type": "application/x-www-form-urlencoded",
      "x-github-event": "ping",
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": await githubSign(source.secret, form),
    });
    expect(res.statusCode).toBe(202);
    const stored = await h.deps.store.load({ tenantId: t.tenantId, aggregateType: "message", aggregateId: res.json().messageId }, messageDecider, { fresh: true });
    expect(stored.state).toMatchObject({ eventType: "ping", payload: { payload: '{"a":1}', x: " y" } });
    // Whitespace a JSON parser would forget is still part of what was signed.
    const spaced = '{ "zen" :  1 }\n';
    const sig = await githubSign(source.secret, spaced);
    expect((await inbound(source.inboundPath, spaced, { "x-hub-signature-256": sig, "x-github-delivery": randomUUID() })).statusCode).toBe(202);

    const ingest = await h.call({ method: "POST", url: "/v1/webhooks/ingest", token: t.key, tenantId: t.tenantId, body: { eventType: "a.b", payload: { n: 1 } } });
    expect(ingest.statusCode).toBe(202);
    const text = await h.call({ method: "POST", url: "/v1/webhooks/ingest", token: t.key, tenantId: t.tenantId, body: "x", headers: { "content-type": "text/plain" } });
    expect(text.statusCode).toBe(415);
  });

  it("answers Slack's URL verification challenge once the request is signed", async () => {
    const source = await createSource(PROVIDERS[3]!);
    const body = JSON.stringify({ type: "url_verification", challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
    const at = nowSeconds();
    const headers = { "x-slack-request-timestamp": String(at), "x-slack-signature": `v0=${hmacOf("sha256", source.secret, `v0:${at}:${body}`, "hex")}` };
    const res = await inbound(source.inboundPath, body, headers);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
    expect((await inbound(source.inboundPath, body, { ...headers, "x-slack-signature": "v0=00" })).statusCode).toBe(401);
  });

  it("accepts one of several concurrent copies of a delivery and refuses the rest", async () => {
    const source = await createSource(PROVIDERS[4]!);
    const body = JSON.stringify({ id: 1 });
    const headers = await PROVIDERS[4]!.headers({ secret: source.secret, body, deliveryId: randomUUID(), at: nowSeconds() });
    const answers = await Promise.all(Array.from({ length: 5 }, () => inbound(source.inboundPath, body, headers)));
    expect(answers.map((res) => res.statusCode).sort()).toEqual([202, 401, 401, 401, 401]);
    expect((await rejectionsOf(source.id)).map((e) => e.data.reason)).toEqual(["replayed", "replayed", "replayed", "replayed"]);
  });

  it("still refuses a delivery hours later, long after JetStream's duplicate window", async () => {
    const source = await createSource(PROVIDERS[1]!);
    const body = JSON.stringify({ zen: 1 });
    const headers = { "x-github-delivery": randomUUID(), "x-hub-signature-256": await githubSign(source.secret, body) };
    expect((await inbound(source.inboundPath, body, headers)).statusCode).toBe(202);
    // A second api process whose clock is three hours on: only the KV claim can know the delivery.
    const later = await buildApp({ ...h.deps, now: () => new Date(Date.now() + 3 * 3600_000) });
    try {
      const replay = await inbound(source.inboundPath, body, headers, later);
      expect(replay.statusCode).toBe(401);
      expect((await rejectionsOf(source.id)).map((e) => e.data)).toEqual([{ reason: "replayed", scheme: "github", deliveryId: headers["x-github-delivery"] }]);
    } finally {
      await later.close();
    }
  });
});

describe("inbound replay under a fresh delivery id", () => {
  // GitHub and Shopify sign the body only: their delivery id header is not covered by the signature.
  it.each([PROVIDERS[1]!, PROVIDERS[4]!])("refuses a $scheme request replayed with a new delivery id", async (provider) => {
    const source = await createSource(provider);
    const before = await failures(provider.scheme);
    const first = `dlv-${randomUUID()}`;
    const body = provider.body(first);
    const signed = await provider.headers({ secret: source.secret, body, deliveryId: first, at: nowSeconds() });
    expect((await inbound(source.inboundPath, body, signed)).statusCode).toBe(202);

    const idHeader = provider.scheme === "github" ? "x-github-delivery" : "x-shopify-webhook-id";
    const second = `dlv-${randomUUID()}`;
    const replay = await inbound(source.inboundPath, body, { ...signed, [idHeader]: second });
    expect({ status: replay.statusCode, code: replay.json().error?.code }).toEqual({ status: 401, code: "unauthorized" });
    expect((await rejectionsOf(source.id)).map((e) => e.data)).toEqual([{ reason: "replayed", scheme: provider.scheme, deliveryId: second }]);
    expect(await failures(provider.scheme)).toBe(before + 1);
  });

  it("refuses the same signature written differently (upper-case hex) under a new delivery id", async () => {
    const source = await createSource(PROVIDERS[1]!);
    const body = JSON.stringify({ zen: "case" });
    const signature = await githubSign(source.secret, body);
    expect((await inbound(source.inboundPath, body, { "x-github-delivery": randomUUID(), "x-hub-signature-256": signature })).statusCode).toBe(202);
    const upper = `sha256=${signature.slice(7).toUpperCase()}`;
    const replay = await inbound(source.inboundPath, body, { "x-github-delivery": randomUUID(), "x-hub-signature-256": upper });
    expect(replay.statusCode).toBe(401);
    expect((await rejectionsOf(source.id)).map((e) => e.data.reason)).toEqual(["replayed"]);
  });

  it("still accepts a provider's retry of a delivery whose first request never stored its message", async () => {
    const source = await createSource(PROVIDERS[4]!);
    const body = JSON.stringify({ id: 2 });
    const deliveryId = randomUUID();
    const headers = await PROVIDERS[4]!.headers({ secret: source.secret, body, deliveryId, at: nowSeconds() });
    // The first attempt claimed the delivery id and died before claiming anything else or appending.
    const claims = await openClaims(h.streams.nc, h.streams.topology, "inbound_deliveries", INBOUND_REPLAY_TTL_MS);
    expect((await claims.claim(t.tenantId, `${source.id}\n${deliveryId}`, newId("message"))).fresh).toBe(true);
    expect((await inbound(source.inboundPath, body, headers)).statusCode).toBe(202);
    expect((await inbound(source.inboundPath, body, headers)).statusCode).toBe(401);
  });
});

describe("inbound rate limiting", () => {
  const github = PROVIDERS[1]!;
  const signedGithub = async (secret: string) => {
    const deliveryId = randomUUID();
    const body = JSON.stringify({ ref: "refs/heads/main", delivery: deliveryId });
    return { body, headers: await github.headers({ secret, body, deliveryId, at: nowSeconds() }) };
  };

  it("spends a bucket of the tenant's own only for verified requests it stores (not forged ones, not replays), leaving its ingest alone", async () => {
    const limited = await createTenantWithKey(h, ["webhooks:write", "ingest"], "Limited");
    const limits = await h.call({ method: "PUT", url: `/v1/tenants/${limited.tenantId}/limits`, body: { ingress: { capacity: 3, refillPerSecond: 0.001 } } });
    expect(limits.statusCode).toBe(200);
    const created = await h.call({
      method: "POST",
      url: "/v1/webhooks/sources",
      token: limited.key,
      tenantId: limited.tenantId,
      body: { name: "github", scheme: "github" },
      headers: { "idempotency-key": `src-${++key}` },
    });
    const source = created.json() as { id: string; secret: string; inboundPath: string };
    // The limits are read from the registry view, which follows the stream.
    await h.deps.view.waitFor(Number(created.headers["x-zen-seq"]), 5_000);

    // The issue's probe: requests to a source that does not exist spend nothing of the tenant's.
    for (let i = 0; i < 7; i++) expect((await inbound(`/v1/inbound/${limited.tenantId}/src_${"0".repeat(26)}`, "{}", {})).statusCode).toBe(404);
    // Nor do forged requests.
    const forged = await Promise.all(
      Array.from({ length: 5 }, () => inbound(source.inboundPath, "{}", { "x-github-delivery": randomUUID(), "x-hub-signature-256": "sha256=00" })),
    );
    expect(forged.map((res) => res.statusCode)).toEqual([401, 401, 401, 401, 401]);
    const captured = await signedGithub(source.secret);
    expect((await inbound(source.inboundPath, captured.body, captured.headers)).statusCode).toBe(202);
    // Nor do replays of a captured signed request.
    for (let i = 0; i < 4; i++) expect((await inbound(source.inboundPath, captured.body, captured.headers)).statusCode).toBe(401);
    const signed = [];
    for (let i = 0; i < 4; i++) {
      const { body, headers } = await signedGithub(source.secret);
      signed.push(await inbound(source.inboundPath, body, headers));
    }
    expect(signed.map((res) => res.statusCode)).toEqual([202, 202, 429, 429]);
    const refused = signed[2]!;
    expect(refused.json().error.code).toBe("rate_limited");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(refused.headers["ratelimit-remaining"]).toBe("0");

    const ingest = await h.call({ method: "POST", url: "/v1/webhooks/ingest", token: limited.key, tenantId: limited.tenantId, body: { eventType: "a.b", payload: {} } });
    expect(ingest.statusCode).toBe(202);
  });

  it("cuts a flood of unknown-source and forged requests off per address, and the tenant's signed requests are still accepted, from that address too", async () => {
    const source = await createSource(github);
    const flooder = "127.200.0.1";
    const unknown = `/v1/inbound/${t.tenantId}/src_${"0".repeat(26)}`;
    const flood = [];
    for (let i = 0; i < 30; i++) {
      flood.push(
        i % 2 === 0
          ? await inbound(unknown, "{}", {}, h.app, flooder)
          : await inbound(source.inboundPath, "{}", { "x-github-delivery": randomUUID(), "x-hub-signature-256": `sha256=${"0".repeat(64)}` }, h.app, flooder),
      );
    }
    const statuses = flood.map((res) => res.statusCode);
    // The address's budget (a burst of 20) answered 404/401; past it the same requests get 429 instead.
    expect(statuses.slice(0, 20).every((status) => status === 404 || status === 401)).toBe(true);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(8);
    expect(flood.find((res) => res.statusCode === 429)!.json().error.code).toBe("rate_limited");

    for (const from of [flooder, undefined]) {
      const { body, headers } = await signedGithub(source.secret);
      expect((await inbound(source.inboundPath, body, headers, h.app, from)).statusCode).toBe(202);
    }
  });
});

describe("inbound under a flood", () => {
  it("records at most a burst of refusals per source as events, and counts every one", async () => {
    const source = await createSource(PROVIDERS[1]!);
    const before = await failures("github");
    const forged = await Promise.all(
      Array.from({ length: 25 }, () => inbound(source.inboundPath, "{}", { "x-github-delivery": randomUUID(), "x-hub-signature-256": `sha256=${"0".repeat(64)}` })),
    );
    expect(forged.every((res) => res.statusCode === 401)).toBe(true);
    expect((await failures("github")) - before).toBe(25);
    const recorded = (await rejectionsOf(source.id)).length;
    expect(recorded).toBeGreaterThanOrEqual(10);
    expect(recorded).toBeLessThanOrEqual(12);
  });

  it("looks for a source the view has not seen in the store only when its id is recent", async () => {
    let loads = 0;
    const counting = { ...h.deps.store, load: ((...args: Parameters<typeof h.deps.store.load>) => (loads++, h.deps.store.load(...args))) as typeof h.deps.store.load };
    const app = await buildApp({ ...h.deps, store: counting });
    try {
      const old = `src_${"01ARZ3NDEKTSV4RRFFQ69G5FAV"}`; // a ULID from 2016
      const fresh = `src_${ulid()}`;
      for (let i = 0; i < 3; i++) expect((await inbound(`/v1/inbound/${t.tenantId}/${old}`, "{}", {}, app)).statusCode).toBe(404);
      expect(loads).toBe(0);
      for (let i = 0; i < 3; i++) expect((await inbound(`/v1/inbound/${t.tenantId}/${fresh}`, "{}", {}, app)).statusCode).toBe(404);
      // Looked for once, then remembered as missing.
      expect(loads).toBe(1);
    } finally {
      await app.close();
    }
  });
});
