import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parkedDecider, parkedIdFor } from "../../domain/parked/parked.js";
import { testContext } from "../../test/support/spine.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let a: Awaited<ReturnType<typeof createTenantWithKey>>;
let b: Awaited<ReturnType<typeof createTenantWithKey>>;

const SCOPES = ["webhooks:read", "webhooks:write", "audit:read", "deliveries:read", "dlq:replay"];

beforeAll(async () => {
  h = await startApiHarness();
  a = await createTenantWithKey(h, SCOPES, "Tenant A");
  b = await createTenantWithKey(h, SCOPES, "Tenant B");
});
afterAll(() => h?.stop());

type Tenant = typeof a;
const as =
  (t: Tenant) =>
  (method: "GET" | "POST" | "PATCH", url: string, body?: unknown, headers: Record<string, string> = {}) =>
    h.call({ method, url, token: t.key, tenantId: t.tenantId, body, headers: method === "GET" ? headers : { "idempotency-key": randomUUID(), ...headers } });
const after = (res: { headers: Record<string, unknown> }) => ({ "x-zen-min-seq": String(res.headers["x-zen-seq"]) });

describe("GET /v1/audit", () => {
  it("lists a mutation with its actor, request id and redacted changes; that a secret was set or changed, never the secret", async () => {
    const created = await as(a)(
      "POST",
      "/v1/webhooks/registry",
      {
        url: "https://example.com/a",
        eventTypes: ["*"],
        description: "owner alice@example.com, from 198.51.100.7",
        metadata: { apiToken: "zk_leaked_0123456789", note: "Bearer abc.def-123" },
      },
      { "x-request-id": "req-audit-create-1" },
    );
    expect(created.statusCode).toBe(201);
    const { id, secret } = created.json() as { id: string; secret: string };
    const rotated = await as(a)("POST", `/v1/webhooks/registry/${id}/rotate-secret`, {}, { "x-request-id": "req-audit-rotate-1" });
    expect(rotated.statusCode).toBe(200);

    const res = await as(a)("GET", "/v1/audit", undefined, after(rotated));
    expect(res.statusCode).toBe(200);
    const { data, nextCursor } = res.json() as { data: Array<Record<string, any>>; nextCursor: string | null };
    expect(nextCursor).toBeNull();
    const registered = data.find((e) => e.action === "endpoint.registered")!;
    expect(registered).toMatchObject({
      actor: { kind: "apikey", id: a.keyId },
      aggregateType: "endpoint",
      aggregateId: id,
      requestId: "req-audit-create-1",
      changes: {
        url: "https://example.com/a",
        description: "owner [REDACTED:email], from [REDACTED:ip]",
        metadata: { apiToken: "[REDACTED]", note: "Bearer [REDACTED:credentials]" },
        secret: "[changed]",
      },
    });
    const rotation = data.find((e) => e.action === "endpoint.secret_rotated")!;
    expect(rotation).toMatchObject({
      actor: { kind: "apikey", id: a.keyId },
      aggregateId: id,
      requestId: "req-audit-rotate-1",
      changes: { previousExpiresAt: expect.any(String), secret: "[changed]" },
    });
    expect(Object.keys(rotation.changes).sort()).toEqual(["previousExpiresAt", "secret"]);
    const text = res.body;
    for (const leaked of [secret, rotated.json().secret, "enc:v1:", "alice@example.com", "zk_leaked"]) expect(text).not.toContain(leaked);
    // The operator creating the tenant and its key is audited as the operator.
    expect(
      data
        .filter((e) => e.actor.kind === "operator")
        .map((e) => e.action)
        .sort(),
    ).toEqual(["apikey.created", "tenant.created"]);
  });

  it("filters by action, request id and time, and pages with a cursor", async () => {
    const patched = await as(a)("PATCH", `/v1/webhooks/registry/${await firstEndpoint(a)}`, { description: "second" });
    expect(patched.statusCode).toBe(200);
    const get = (query: string) =>
      as(a)("GET", `/v1/audit${query}`, undefined, after(patched)).then((r) => r.json() as { data: Array<Record<string, any>>; nextCursor: string | null });

    expect((await get("?action=endpoint.updated")).data.map((e) => e.action)).toEqual(["endpoint.updated"]);
    expect((await get("?requestId=req-audit-rotate-1")).data.map((e) => e.action)).toEqual(["endpoint.secret_rotated"]);
    const all = (await get("")).data;
    expect(all.length).toBe(5);
    const newest = all[0]!.occurredAt as string;
    expect((await get(`?since=${encodeURIComponent(newest)}`)).data.map((e) => e.id)).toEqual([all[0]!.id]);
    expect((await get(`?until=${encodeURIComponent(newest)}`)).data.map((e) => e.id)).not.toContain(all[0]!.id);

    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { data: Array<Record<string, any>>; nextCursor: string | null } = await get(`?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      pages.push(...page.data.map((e) => e.id as string));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual(all.map((e) => e.id));
    expect((await as(a)("GET", "/v1/audit?since=yesterday")).statusCode).toBe(400);
    // A forged cursor whose time Postgres would refuse is a 400, never a 500.
    const forged = Buffer.from(JSON.stringify(["2020-02-30", "x"])).toString("base64url");
    expect((await as(a)("GET", `/v1/audit?cursor=${forged}`)).statusCode).toBe(400);
  });

  it("tenant A never sees tenant B's audit rows, and the scope is required", async () => {
    const created = await as(b)("POST", "/v1/webhooks/registry", { url: "https://example.com/b", eventTypes: ["*"] }, { "x-request-id": "req-audit-tenant-b" });
    expect(created.statusCode).toBe(201);
    const seenByB = (await as(b)("GET", "/v1/audit?requestId=req-audit-tenant-b", undefined, after(created))).json();
    expect(seenByB.data).toHaveLength(1);
    const seenByA = await as(a)("GET", "/v1/audit?requestId=req-audit-tenant-b", undefined, after(created));
    expect(seenByA.json()).toEqual({ data: [], nextCursor: null });
    const allOfA = (await as(a)("GET", "/v1/audit?limit=500")).json().data as Array<Record<string, any>>;
    expect(allOfA.map((e) => e.aggregateId)).not.toContain(created.json().id);
    // A's key naming B's tenant is refused before any read.
    expect((await h.call({ method: "GET", url: "/v1/audit", token: a.key, tenantId: b.tenantId })).statusCode).toBe(403);
    const noScope = await createTenantWithKey(h, ["webhooks:read"], "No audit");
    expect((await h.call({ method: "GET", url: "/v1/audit", token: noScope.key, tenantId: noScope.tenantId })).statusCode).toBe(403);
  });
});

describe("tenant-bound reads of the other read models", () => {
  it("the DLQ and a replay (selection and progress) read through row-level security, and a replay is audited", async () => {
    const dlq = await as(a)("GET", "/v1/webhooks/dlq");
    expect(dlq.statusCode).toBe(200);
    expect(dlq.json()).toEqual({ data: [], nextCursor: null });
    const replay = await as(a)("POST", "/v1/webhooks/dlq/replay", { filter: {} }, { "x-request-id": "req-audit-replay" });
    expect(replay.statusCode).toBe(202);
    const { replayId } = replay.json() as { replayId: string };
    const progress = await as(a)("GET", `/v1/webhooks/dlq/replay/${replayId}`, undefined, after(replay));
    expect(progress.statusCode).toBe(200);
    expect(progress.json()).toMatchObject({ id: replayId, requested: 0 });
    expect((await as(b)("GET", `/v1/webhooks/dlq/replay/${replayId}`, undefined, after(replay))).statusCode).toBe(404);
    const audited = (await as(a)("GET", "/v1/audit?requestId=req-audit-replay", undefined, after(replay))).json().data as Array<Record<string, any>>;
    expect(audited.map((e) => e.action)).toContain("replay.requested");
  });
});

describe("POST /v1/webhooks/registry/{id}/rotate-secret", () => {
  it("defaults the grace to 24 h with no body, refuses more than 7 days, and 404s another tenant's endpoint", async () => {
    const created = await as(a)("POST", "/v1/webhooks/registry", { url: "https://example.com/rotating", eventTypes: ["*"] });
    const id = created.json().id as string;
    const started = Date.now();
    const rotated = await h.call({
      method: "POST",
      url: `/v1/webhooks/registry/${id}/rotate-secret`,
      token: a.key,
      tenantId: a.tenantId,
      headers: { "idempotency-key": randomUUID() },
    });
    expect(rotated.statusCode).toBe(200);
    const expiresIn = Date.parse(rotated.json().previousExpiresAt) - started;
    expect(expiresIn).toBeGreaterThan(24 * 3_600_000 - 60_000);
    expect(expiresIn).toBeLessThan(24 * 3_600_000 + 60_000);
    expect((await as(a)("POST", `/v1/webhooks/registry/${id}/rotate-secret`, { graceSeconds: 7 * 86_400 + 1 })).statusCode).toBe(400);
    expect((await as(a)("POST", `/v1/webhooks/registry/${id}/rotate-secret`, { graceSeconds: 60, secret: "whsec_x" })).statusCode).toBe(400);
    expect((await as(b)("POST", `/v1/webhooks/registry/${id}/rotate-secret`, {})).statusCode).toBe(404);
    expect(h.logLines.join("")).not.toContain(rotated.json().secret);
  });
});

describe("test sends (real outbound requests) are audited", () => {
  it("a bare-URL send and an endpoint send appear in GET /v1/audit with their outcome, secret-free", async () => {
    const c = await createTenantWithKey(h, SCOPES, "Test sender");
    // Neither reaches a receiver: the guard refuses loopback, and .invalid never resolves. Both are real attempts all the same.
    const bare = await as(c)(
      "POST",
      "/v1/webhooks/test",
      { url: "http://127.0.0.1:9/hook?token=hush", eventType: "a.b", payload: {} },
      { "x-request-id": "req-audit-test-url" },
    );
    expect(bare.statusCode).toBe(200);
    const created = await as(c)("POST", "/v1/webhooks/registry", { url: "https://hook.example.invalid/h", eventTypes: ["*"], deliveryPolicy: { timeoutMs: 1_000 } });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    const toEndpoint = await as(c)("POST", "/v1/webhooks/test", { endpointId: id, eventType: "a.b", payload: {} }, { "x-request-id": "req-audit-test-endpoint" });
    expect(toEndpoint.statusCode).toBe(200);

    const rows = (await as(c)("GET", "/v1/audit?limit=500", undefined, after(toEndpoint))).json().data as Array<Record<string, any>>;
    const byUrl = rows.find((e) => e.requestId === "req-audit-test-url");
    expect(byUrl).toMatchObject({
      action: "tenant.test_sent",
      actor: { kind: "apikey", id: c.keyId },
      aggregateType: "tenant",
      aggregateId: c.tenantId,
      changes: { eventType: "a.b", error: "blocked_target", url: "http://[REDACTED:ip]:9/hook", webhookId: expect.stringMatching(/^msg_test_/) },
    });
    const byEndpoint = rows.find((e) => e.requestId === "req-audit-test-endpoint");
    expect(byEndpoint).toMatchObject({
      action: "endpoint.test_sent",
      aggregateType: "endpoint",
      aggregateId: id,
      changes: { eventType: "a.b", error: expect.any(String) },
    });
    expect(JSON.stringify(rows)).not.toMatch(/hush|whsec_|enc:v1:/);
  });
});

/**
 * Every mutating route of the OpenAPI document, each with a request that succeeds. A new mutating
 * route fails the walk until it gets a case here, and the case fails until the route is audited.
 * Not walked: ingest and inbound intake, whose every message is its own immutable event
 * (`message.received`, refusals `signature.rejected`) read through the deliveries and event-stream
 * APIs, not the audit log (README "Audit").
 */
describe("every mutating route is audited", () => {
  const NOT_AUDITED = new Set(["POST /v1/webhooks/ingest", "POST /v1/inbound/{tenantId}/{sourceId}"]);
  type Ctx = { tenantId: string; endpointId?: string; sourceId?: string; keyId?: string };
  type Sent = { res: Awaited<ReturnType<ApiHarness["call"]>>; tenantId: string };
  const send = (ctx: Ctx, method: "POST" | "PUT" | "PATCH" | "DELETE", url: string, requestId: string, body?: unknown) =>
    h.call({ method, url, tenantId: ctx.tenantId, body, headers: { "x-request-id": requestId } });
  // In order: what a later case needs, an earlier one made.
  const cases: Array<[string, (ctx: Ctx, requestId: string) => Promise<Sent>]> = [
    [
      "POST /v1/tenants",
      async (_ctx, rid) => {
        const res = await h.call({ method: "POST", url: "/v1/tenants", body: { name: "Walked" }, headers: { "x-request-id": rid } });
        return { res, tenantId: res.json().id };
      },
    ],
    [
      "POST /v1/tenants/{tenantId}/api-keys",
      async (ctx, rid) => {
        const res = await send(ctx, "POST", `/v1/tenants/${ctx.tenantId}/api-keys`, rid, { name: "walk", scopes: ["webhooks:read"] });
        ctx.keyId = res.json().id;
        return { res, tenantId: ctx.tenantId };
      },
    ],
    [
      "DELETE /v1/tenants/{tenantId}/api-keys/{keyId}",
      async (ctx, rid) => ({ res: await send(ctx, "DELETE", `/v1/tenants/${ctx.tenantId}/api-keys/${ctx.keyId}`, rid), tenantId: ctx.tenantId }),
    ],
    [
      "PUT /v1/tenants/{tenantId}/limits",
      async (ctx, rid) => ({
        res: await send(ctx, "PUT", `/v1/tenants/${ctx.tenantId}/limits`, rid, { outbound: { capacity: 5, refillPerSecond: 1 } }),
        tenantId: ctx.tenantId,
      }),
    ],
    [
      "POST /v1/webhooks/registry",
      async (ctx, rid) => {
        const res = await send(ctx, "POST", "/v1/webhooks/registry", rid, {
          url: "https://hook.example.invalid/walk",
          eventTypes: ["*"],
          deliveryPolicy: { timeoutMs: 1_000 },
        });
        ctx.endpointId = res.json().id;
        return { res, tenantId: ctx.tenantId };
      },
    ],
    [
      "PATCH /v1/webhooks/registry/{id}",
      async (ctx, rid) => ({ res: await send(ctx, "PATCH", `/v1/webhooks/registry/${ctx.endpointId}`, rid, { description: "walked" }), tenantId: ctx.tenantId }),
    ],
    [
      "POST /v1/webhooks/registry/{id}/rotate-secret",
      async (ctx, rid) => ({ res: await send(ctx, "POST", `/v1/webhooks/registry/${ctx.endpointId}/rotate-secret`, rid, {}), tenantId: ctx.tenantId }),
    ],
    [
      "POST /v1/webhooks/test",
      async (ctx, rid) => ({
        res: await send(ctx, "POST", "/v1/webhooks/test", rid, { endpointId: ctx.endpointId, eventType: "a.b", payload: {} }),
        tenantId: ctx.tenantId,
      }),
    ],
    [
      "DELETE /v1/webhooks/registry/{id}",
      async (ctx, rid) => ({ res: await send(ctx, "DELETE", `/v1/webhooks/registry/${ctx.endpointId}`, rid), tenantId: ctx.tenantId }),
    ],
    ["POST /v1/webhooks/dlq/replay", async (ctx, rid) => ({ res: await send(ctx, "POST", "/v1/webhooks/dlq/replay", rid, { filter: {} }), tenantId: ctx.tenantId })],
    [
      "POST /v1/webhooks/sources",
      async (ctx, rid) => {
        const res = await send(ctx, "POST", "/v1/webhooks/sources", rid, { name: "walk", scheme: "github", secret: "walk-secret-0123456789" });
        ctx.sourceId = res.json().id;
        return { res, tenantId: ctx.tenantId };
      },
    ],
    [
      "PATCH /v1/webhooks/sources/{id}",
      async (ctx, rid) => ({ res: await send(ctx, "PATCH", `/v1/webhooks/sources/${ctx.sourceId}`, rid, { name: "walked" }), tenantId: ctx.tenantId }),
    ],
    ["DELETE /v1/webhooks/sources/{id}", async (ctx, rid) => ({ res: await send(ctx, "DELETE", `/v1/webhooks/sources/${ctx.sourceId}`, rid), tenantId: ctx.tenantId })],
    [
      "POST /v1/parked/{parkedId}/replay",
      async (ctx, rid) => {
        // A message the router parked (as its reactor records it), then the operator's replay.
        const parkedId = parkedIdFor("router", 77);
        const command = { type: "Park" as const, reactor: "router", streamSeq: 77, subject: "s", reason: "handler_failed" as const, failures: 5, error: "e" };
        const ref = { tenantId: ctx.tenantId, aggregateType: "parked" as const, aggregateId: parkedId };
        const { lastSeq } = await h.deps.store.handle(ref, parkedDecider, command, { causeId: `${parkedId}:parked`, context: testContext() });
        const res = await h.call({ method: "POST", url: `/v1/parked/${parkedId}/replay`, headers: { "x-request-id": rid, "x-zen-min-seq": String(lastSeq) } });
        return { res, tenantId: ctx.tenantId };
      },
    ],
  ];

  it("each mutating route of GET /docs/openapi.json leaves an audit row with its request id", async () => {
    const doc = (await h.call({ method: "GET", url: "/docs/openapi.json", token: null })).json() as { paths: Record<string, Record<string, unknown>> };
    const mutating = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ["post", "put", "patch", "delete"].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(mutating.length).toBeGreaterThan(10);
    expect(cases.map(([route]) => route).sort()).toEqual(mutating.filter((route) => !NOT_AUDITED.has(route)).sort());

    const ctx: Ctx = { tenantId: "" };
    const sent: Array<{ route: string; requestId: string; tenantId: string }> = [];
    for (const [route, run] of cases) {
      const requestId = `req-walk-${randomUUID()}`;
      const { res, tenantId } = await run(ctx, requestId);
      expect(res.statusCode, `${route}: ${res.body}`).toBeLessThan(300);
      ctx.tenantId = tenantId;
      sent.push({ route, requestId, tenantId });
    }
    const minSeq = String((await h.streams.jsm.streams.info(h.streams.topology.stream)).state.last_seq);
    for (const { route, requestId, tenantId } of sent) {
      const res = await h.call({ method: "GET", url: `/v1/audit?requestId=${requestId}`, tenantId, headers: { "x-zen-min-seq": minSeq } });
      expect(res.statusCode).toBe(200);
      expect((res.json().data as unknown[]).length, route).toBeGreaterThan(0);
    }
  });
});

describe("OpenAPI", () => {
  it("documents GET /v1/audit and rotate-secret", async () => {
    const doc = (await h.call({ method: "GET", url: "/docs/openapi.json", token: null })).json() as { paths: Record<string, Record<string, unknown>> };
    expect(doc.paths["/v1/audit"]).toHaveProperty("get");
    expect(doc.paths["/v1/webhooks/registry/{id}/rotate-secret"]).toHaveProperty("post");
  });
});

async function firstEndpoint(t: Tenant): Promise<string> {
  const list = await as(t)("GET", "/v1/webhooks/registry");
  return (list.json().data as Array<{ id: string }>).at(-1)!.id;
}
