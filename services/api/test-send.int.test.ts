import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAllEvents } from "../../test/support/nats.js";
import { buildApp } from "./app.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;
/** The same api with 127.0.0.0/8 allowlisted for the SSRF guard, and with private targets allowed. */
let allowlisted: FastifyInstance;
let open: FastifyInstance;
let receiver: Server;
let base = "";
const received: Received[] = [];

beforeAll(async () => {
  h = await startApiHarness(); // allowPrivateTargets: false
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write", "deliveries:read"]);
  const allowlistConfig = { ...h.deps.config, allowedTargetCidrs: ["127.0.0.0/8"] };
  allowlisted = await buildApp({ ...h.deps, config: allowlistConfig });
  open = await buildApp({ ...h.deps, config: { ...h.deps.config, allowPrivateTargets: true } });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "/", headers: req.headers, raw: Buffer.concat(chunks).toString("utf8") });
      const status = req.url === "/fail" ? 500 : 200;
      res.writeHead(status, { "content-type": "text/plain", "x-receiver": "yes" }).end(status === 200 ? "got it" : "broken");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  // The key's first use is recorded (apikey.used) once an hour: get it recorded before the tests
  // count events, so "records nothing" is about the test sends alone.
  await allowlisted.inject({ method: "GET", url: "/v1/webhooks/registry", headers: headers() });
  await h.deps.keyUsage?.settled();
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await allowlisted?.close();
  await open?.close();
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await h?.stop();
});

const headers = () => ({ authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId, "content-type": "application/json" });
const testSend = (app: FastifyInstance, body: unknown) => app.inject({ method: "POST", url: "/v1/webhooks/test", headers: headers(), payload: JSON.stringify(body) });
const lastSeq = async () => (await h.streams.jsm.streams.info(h.streams.topology.stream)).state.last_seq;
/** The events stored after `seq`: a test send stores its audit event and nothing else. */
const eventsAfter = async (seq: number) => (await readAllEvents(h.streams, h.streams.topology)).filter((e) => e.seq > seq).map((e) => e.envelope);
const event = { eventType: "invoice.paid", payload: { id: "in_1", amount: 42 } };

function verify(r: Received, secret: string) {
  return new Webhook(secret).verify(r.raw, r.headers as Record<string, string>);
}

describe("POST /v1/webhooks/test", () => {
  it("sends one signed request to a bare url, returns the one-off secret, records no delivery, only its audit event", async () => {
    const seqBefore = await lastSeq();
    const res = await testSend(allowlisted, { url: `${base}/bare?token=hush#frag`, ...event });
    expect(res.statusCode).toBe(200);
    const out = res.json();
    expect(out).toMatchObject({ ok: true, status: 200, responseBodyPreview: "got it", secret: expect.stringMatching(/^whsec_/) });
    expect(out.responseHeaders).toMatchObject({ "content-type": "text/plain", "x-receiver": "yes" });
    expect(Number.isInteger(out.latencyMs)).toBe(true);
    expect(out.error).toBeUndefined();

    const hits = received.filter((r) => r.path.startsWith("/bare"));
    expect(hits).toHaveLength(1);
    expect(hits[0]!.headers["webhook-id"]).toMatch(/^msg_test_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(verify(hits[0]!, out.secret)).toMatchObject({ type: "invoice.paid", data: event.payload });
    expect(() => verify(hits[0]!, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toThrow();

    const [audited, ...more] = await eventsAfter(seqBefore);
    expect(more).toEqual([]);
    expect(audited).toMatchObject({
      type: "tenant.test_sent",
      aggregateType: "tenant",
      aggregateId: t.tenantId,
      actor: { kind: "apikey", id: t.keyId },
      data: { webhookId: hits[0]!.headers["webhook-id"], eventType: "invoice.paid", url: `${base}/bare`, status: 200, latencyMs: out.latencyMs },
    });
    expect(JSON.stringify(audited)).not.toMatch(/hush|frag|whsec_/);
    expect(Number(res.headers["x-zen-seq"])).toBe(seqBefore + 1);
    const deliveries = await h.call({ method: "GET", url: "/v1/webhooks/deliveries", token: t.key, tenantId: t.tenantId });
    expect(deliveries.json().data).toEqual([]);
    expect(h.logLines.join("")).not.toContain(out.secret);
  });

  it("signs with the endpoint's own secret for endpointId, and returns no secret", async () => {
    const created = await open.inject({
      method: "POST",
      url: "/v1/webhooks/registry",
      headers: { ...headers(), "idempotency-key": "test-send-register-endpoint" },
      payload: JSON.stringify({ url: `${base}/endpoint`, eventTypes: ["*"], deliveryPolicy: { timeoutMs: 2_000 } }),
    });
    expect(created.statusCode).toBe(201);
    const { id, secret } = created.json() as { id: string; secret: string };
    const seqBefore = await lastSeq();

    const res = await testSend(allowlisted, { endpointId: id, ...event });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, status: 200 });
    expect(res.json().secret).toBeUndefined();
    const hits = received.filter((r) => r.path === "/endpoint");
    expect(hits).toHaveLength(1);
    expect(verify(hits[0]!, secret)).toMatchObject({ type: "invoice.paid", data: event.payload });
    expect(String(hits[0]!.headers["webhook-id"])).toMatch(/^msg_test_/);
    const audited = await eventsAfter(seqBefore);
    expect(audited).toEqual([
      expect.objectContaining({
        type: "endpoint.test_sent",
        aggregateType: "endpoint",
        aggregateId: id,
        data: { webhookId: hits[0]!.headers["webhook-id"], eventType: "invoice.paid", status: 200, latencyMs: res.json().latencyMs },
      }),
    ]);

    // another tenant's endpoint is not found, and nothing is sent
    const other = await createTenantWithKey(h, ["webhooks:write"], "Other");
    const foreign = await allowlisted.inject({
      method: "POST",
      url: "/v1/webhooks/test",
      payload: JSON.stringify({ endpointId: id, ...event }),
      headers: { authorization: `Bearer ${other.key}`, "x-tenant-id": other.tenantId, "content-type": "application/json" },
    });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error.code).toBe("not_found");
    expect(received.filter((r) => r.path === "/endpoint")).toHaveLength(1);
  });

  it("reports a receiver's failure as ok: false with its status", async () => {
    const res = await testSend(allowlisted, { url: `${base}/fail`, ...event });
    expect(res.json()).toMatchObject({ ok: false, status: 500, responseBodyPreview: "broken" });
  });

  it("answers 200 ok: false blocked_target when the guard refuses, and sends nothing", async () => {
    const before = received.length;
    const port = new URL(base).port;
    for (const url of [`${base}/blocked`, `http://2130706433:${port}/blocked`, `http://[::ffff:127.0.0.1]:${port}/blocked`, `http://localhost:${port}/blocked`]) {
      const res = await testSend(h.app, { url, ...event });
      expect(res.statusCode, url).toBe(200);
      expect(res.json(), url).toMatchObject({ ok: false, error: "blocked_target" });
      expect(res.json().status, url).toBeUndefined();
    }
    expect(received.length).toBe(before);
  });

  it.each([
    ["both", { endpointId: "ep_01J00000000000000000000000", url: "https://example.invalid/x", ...event }],
    ["neither", event],
  ])("400 invalid_request with %s of endpointId and url", async (_name, body) => {
    const res = await testSend(h.app, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: "invalid_request", details: [{ path: "body.endpointId", message: "give exactly one of endpointId and url" }] });
  });

  it("400 on unknown fields or a bad event type, 422 on a non-http url, 403 without webhooks:write", async () => {
    expect((await testSend(h.app, { url: "https://example.invalid/x", ...event, extra: 1 })).statusCode).toBe(400);
    expect((await testSend(h.app, { url: "https://example.invalid/x", eventType: "bad type", payload: {} })).statusCode).toBe(400);
    const ftp = await testSend(h.app, { url: "ftp://example.invalid/x", ...event });
    expect(ftp.statusCode).toBe(422);
    expect(ftp.json().error.code).toBe("unprocessable");
    const reader = await createTenantWithKey(h, ["webhooks:read"], "Reader");
    const res = await h.app.inject({
      method: "POST",
      url: "/v1/webhooks/test",
      payload: JSON.stringify({ url: `${base}/x`, ...event }),
      headers: { authorization: `Bearer ${reader.key}`, "x-tenant-id": reader.tenantId, "content-type": "application/json" },
    });
    expect(res.statusCode).toBe(403);
  });

  it("is in the OpenAPI document", async () => {
    const doc = (await h.app.inject({ method: "GET", url: "/docs/openapi.json" })).json();
    expect(doc.paths["/v1/webhooks/test"].post).toBeDefined();
  });
});

describe("registration refuses literal non-global targets (allowPrivateTargets false)", () => {
  it.each([
    "http://127.0.0.1:8080/x",
    "http://127.1/x",
    "http://2130706433/x",
    "http://0x7f000001/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://localhost:3000/x",
    "http://10.0.0.1/x",
    "http://169.254.169.254/latest",
    "http://100.64.0.1/x",
    "http://[fd00::1]/x",
    "http://[fe80::1]/x",
    "http://0.0.0.0/x",
  ])("422 for %s", async (url) => {
    const res = await h.call({ method: "POST", url: "/v1/webhooks/registry", token: t.key, tenantId: t.tenantId, body: { url, eventTypes: ["*"] } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe("unprocessable");
  });

  it("accepts a public name (DNS is judged when sending)", async () => {
    const res = await h.call({
      method: "POST",
      url: "/v1/webhooks/registry",
      token: t.key,
      tenantId: t.tenantId,
      body: { url: "https://example.invalid/x", eventTypes: ["*"] },
    });
    expect(res.statusCode).toBe(201);
  });
});
