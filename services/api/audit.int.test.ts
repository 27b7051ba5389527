import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
const as = (t: Tenant) => (method: "GET" | "POST" | "PATCH", url: string, body?: unknown, headers: Record<string, string> = {}) =>
  h.call({ method, url, token: t.key, tenantId: t.tenantId, body, headers: method === "GET" ? headers : { "idempotency-key": randomUUID(), ...headers } });
const after = (res: { headers: Record<string, unknown> }) => ({ "x-zen-min-seq": String(res.headers["x-zen-seq"]) });

describe("GET /v1/audit", () => {
  it("lists a mutation with its actor, request id and redacted changes; never a secret", async () => {
    const created = await as(a)("POST", "/v1/webhooks/registry", {
      url: "https://example.com/a", eventTypes: ["*"], description: "owner alice@example.com, from 198.51.100.7",
      metadata: { apiToken: "zk_leaked_0123456789", note: "Bearer abc.def-123" },
    }, { "x-request-id": "req-audit-create-1" });
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
      actor: { kind: "apikey", id: a.keyId }, aggregateType: "endpoint", aggregateId: id, requestId: "req-audit-create-1",
      changes: {
        url: "https://example.com/a",
        description: "owner [REDACTED:email], from [REDACTED:ip]",
        metadata: { apiToken: "[REDACTED]", note: "Bearer [REDACTED:credentials]" },
      },
    });
    expect(registered.changes).not.toHaveProperty("secret");
    const rotation = data.find((e) => e.action === "endpoint.secret_rotated")!;
    expect(rotation).toMatchObject({ actor: { kind: "apikey", id: a.keyId }, aggregateId: id, requestId: "req-audit-rotate-1", changes: { previousExpiresAt: expect.any(String) } });
    expect(Object.keys(rotation.changes)).toEqual(["previousExpiresAt"]);
    const text = res.body;
    for (const leaked of [secret, rotated.json().secret, "enc:v1:", "alice@example.com", "zk_leaked"]) expect(text).not.toContain(leaked);
    // The operator creating the tenant and its key is audited as the operator.
    expect(data.filter((e) => e.actor.kind === "operator").map((e) => e.action).sort()).toEqual(["apikey.created", "tenant.created"]);
  });

  it("filters by action, request id and time, and pages with a cursor", async () => {
    const patched = await as(a)("PATCH", `/v1/webhooks/registry/${(await firstEndpoint(a))}`, { description: "second" });
    expect(patched.statusCode).toBe(200);
    const get = (query: string) => as(a)("GET", `/v1/audit${query}`, undefined, after(patched)).then((r) => r.json() as { data: Array<Record<string, any>>; nextCursor: string | null });

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
    const rotated = await h.call({ method: "POST", url: `/v1/webhooks/registry/${id}/rotate-secret`, token: a.key, tenantId: a.tenantId, headers: { "idempotency-key": randomUUID() } });
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
