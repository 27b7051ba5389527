import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAllEvents } from "../../test/support/nats.js";
import { ulid } from "ulidx";
import { buildApp } from "./app.js";
import { createKeyLookup } from "./key-lookup.js";
import { ADMIN_TOKEN, createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let acme: Awaited<ReturnType<typeof createTenantWithKey>>;
let globex: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  h = await startApiHarness();
  acme = await createTenantWithKey(h, ["ingest", "webhooks:read"]);
  globex = await createTenantWithKey(h, ["webhooks:write"], "Globex");
});
afterAll(() => h?.stop());

const list = (token: string | null, tenantId?: string) => h.call({ method: "GET", url: "/v1/webhooks/registry", token, tenantId });

describe("credentials", () => {
  it("401 without a credential, with an unknown token, and with a well-formed but unknown key", async () => {
    const unknownKey = `zk_01HZZZZZZZZZZZZZZZZZZZZZZZ_${"a".repeat(43)}`;
    for (const token of [null, "nope", unknownKey]) {
      const res = await list(token, acme.tenantId);
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({ code: "unauthorized", requestId: expect.any(String) });
    }
  });

  it("accepts a tenant key on its own tenant with the route's scope", async () => {
    expect((await list(acme.key, acme.tenantId)).statusCode).toBe(200);
  });

  it("400 tenant_header_required without X-Tenant-Id", async () => {
    const res = await list(acme.key);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("tenant_header_required");
  });

  it("checks the credential before the tenant header: 401, not 400, for a bad or absent token without X-Tenant-Id", async () => {
    const unknownKey = `zk_${ulid()}_${"b".repeat(43)}`;
    for (const token of [null, "nope", unknownKey, "eyJhbGciOiJIUzI1NiJ9.e30.x"]) {
      const res = await list(token);
      expect(res.statusCode, String(token)).toBe(401);
      expect(res.json().error.code).toBe("unauthorized");
    }
    expect((await list(ADMIN_TOKEN)).json().error.code).toBe("tenant_header_required");
  });

  it("403 when the key names another tenant", async () => {
    const res = await list(acme.key, globex.tenantId);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe("forbidden");
  });

  it("403 when the key lacks the route's scope", async () => {
    const res = await list(globex.key, globex.tenantId);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toMatch(/webhooks:read/);
  });

  it("403 for a tenant key on an operator route", async () => {
    const res = await h.call({ method: "POST", url: "/v1/tenants", token: acme.key, body: { name: "x" } });
    expect(res.statusCode).toBe(403);
  });

  it("the operator acts on any existing tenant by naming it, and is audited as the operator", async () => {
    expect((await list(ADMIN_TOKEN, globex.tenantId)).statusCode).toBe(200);
    const res = await h.call({ method: "POST", url: "/v1/webhooks/ingest", tenantId: acme.tenantId, body: { eventType: "a.b", payload: {} } });
    expect(res.statusCode).toBe(202);
    const subject = h.streams.topology.aggregateSubject(acme.tenantId, "message", res.json().messageId);
    const stored = await h.streams.jsm.streams.getMessage(h.streams.topology.stream, { last_by_subj: subject });
    expect(stored?.json<{ actor: unknown }>().actor).toEqual({ kind: "operator", id: "admin" });
  });

  it("404 when the operator names a tenant that does not exist", async () => {
    const res = await list(ADMIN_TOKEN, "ten_01HZZZZZZZZZZZZZZZZZZZZZZZ");
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe("not_found");
  });
});

describe("API keys", () => {
  it("are shown once, never admin, and 404 on an unknown tenant", async () => {
    const admin = await h.call({ method: "POST", url: `/v1/tenants/${acme.tenantId}/api-keys`, body: { name: "k", scopes: ["admin"] } });
    expect(admin.statusCode).toBe(400);
    const missing = await h.call({ method: "POST", url: "/v1/tenants/ten_01HZZZZZZZZZZZZZZZZZZZZZZZ/api-keys", body: { name: "k", scopes: ["ingest"] } });
    expect(missing.statusCode).toBe(404);
    expect(acme.key).toMatch(/^zk_[0-9A-Z]{26}_[A-Za-z0-9_-]{43}$/);
    expect(acme.keyId).toBe(`key_${acme.key.slice(3, 29)}`);
  });

  it("a key the view has not seen yet (made by another process) is found in the store", async () => {
    const { view } = h.deps;
    const blind = { ...view, apiKeyByHash: () => undefined, tenant: () => undefined } as typeof view;
    const other = await buildApp({ ...h.deps, view: blind });
    try {
      const res = await other.inject({ method: "GET", url: "/v1/webhooks/registry", headers: { authorization: `Bearer ${acme.key}`, "x-tenant-id": acme.tenantId } });
      expect(res.statusCode).toBe(200);
      const wrongTenant = await other.inject({
        method: "GET",
        url: "/v1/webhooks/registry",
        headers: { authorization: `Bearer ${acme.key}`, "x-tenant-id": globex.tenantId },
      });
      expect(wrongTenant.statusCode).toBe(403);
      expect(wrongTenant.json().error.code).toBe("forbidden");
      const noHeader = await other.inject({ method: "GET", url: "/v1/webhooks/registry", headers: { authorization: `Bearer ${acme.key}` } });
      expect(noHeader.json().error.code).toBe("tenant_header_required");
      const operator = await other.inject({
        method: "GET",
        url: "/v1/webhooks/registry",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "x-tenant-id": acme.tenantId },
      });
      expect(operator.statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("a key the view has not seen is looked up in the store a bounded number of times", async () => {
    const reads: string[] = [];
    const store = new Proxy(h.deps.store, {
      get(target, property, receiver) {
        if (property === "readSubject") {
          return (subject: string, afterSeq?: number) => {
            reads.push(subject);
            return target.readSubject(subject, afterSeq);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
    const blind = { ...h.deps.view, apiKeyByHash: () => undefined } as typeof h.deps.view;
    const other = await buildApp({ ...h.deps, store, view: blind });
    const call = (token: string) =>
      other.inject({ method: "GET", url: "/v1/webhooks/registry", headers: { authorization: `Bearer ${token}`, "x-tenant-id": acme.tenantId } });
    try {
      // Malformed, or well formed but older than any key the view could still be catching up on: no read.
      for (const token of ["zk_nope", `zk_${ulid(Date.now() - 86_400_000)}_${"c".repeat(43)}`]) expect((await call(token)).statusCode).toBe(401);
      expect(reads).toEqual([]);
      // A fresh unknown key: one look-up, then remembered as unknown.
      const unknownKey = `zk_${ulid()}_${"d".repeat(43)}`;
      for (let i = 0; i < 5; i++) expect((await call(unknownKey)).statusCode).toBe(401);
      expect(reads).toHaveLength(1);
      // The real key, created a moment ago, is still found (and its tenant with it).
      expect((await call(acme.key)).statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("at most storeReadsPerSecond store look-ups a second, whatever the tokens", async () => {
    let reads = 0;
    const store = { ...h.deps.store, readSubject: (subject: string) => (reads++, h.deps.store.readSubject(subject)) } as typeof h.deps.store;
    const now = Date.now();
    const find = createKeyLookup({ store, view: h.deps.view }, { now: () => now, storeReadsPerSecond: 3 });
    const found = await Promise.all(Array.from({ length: 10 }, (_, i) => find(`zk_${ulid()}_${String(i).repeat(43)}`)));
    expect(found.every((k) => k === null)).toBe(true);
    expect(reads).toBe(3);
  });

  it("a revoked key gets 401; revoking again is 204", async () => {
    const { tenantId, keyId, key } = await createTenantWithKey(h, ["webhooks:read"]);
    expect((await list(key, tenantId)).statusCode).toBe(200);
    const revoke = await h.call({ method: "DELETE", url: `/v1/tenants/${tenantId}/api-keys/${keyId}` });
    expect(revoke.statusCode).toBe(204);
    expect(Number(revoke.headers["x-zen-seq"])).toBeGreaterThan(0);
    const res = await list(key, tenantId);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe("unauthorized");
    expect((await h.call({ method: "DELETE", url: `/v1/tenants/${tenantId}/api-keys/${keyId}` })).statusCode).toBe(204);
  });

  it("revoking an unknown key is 404, a malformed key id too", async () => {
    for (const keyId of ["key_01HZZZZZZZZZZZZZZZZZZZZZZZ", "nope"]) {
      const res = await h.call({ method: "DELETE", url: `/v1/tenants/${acme.tenantId}/api-keys/${keyId}` });
      expect(res.statusCode).toBe(404);
    }
  });
});

describe("API key last use", () => {
  it("is recorded (to the hour) and listed by GET /v1/tenants/{id}/api-keys, which never shows the key", async () => {
    const fresh = await createTenantWithKey(h, ["webhooks:read"], "Initech");
    const lastSeq = async () => String((await h.streams.jsm.streams.info(h.streams.topology.stream)).state.last_seq);
    const before = await h.call({ method: "GET", url: `/v1/tenants/${fresh.tenantId}/api-keys`, headers: { "x-zen-min-seq": await lastSeq() } });
    expect(before.statusCode).toBe(200);
    expect(before.json().data).toEqual([expect.objectContaining({ id: fresh.keyId, lastUsedAt: null, revokedAt: null })]);
    expect((await list(fresh.key, fresh.tenantId)).statusCode).toBe(200);
    expect((await list(fresh.key, fresh.tenantId)).statusCode).toBe(200);
    await h.deps.keyUsage?.settled();
    const after = await h.call({ method: "GET", url: `/v1/tenants/${fresh.tenantId}/api-keys`, headers: { "x-zen-min-seq": await lastSeq() } });
    const [row] = after.json().data;
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
    expect(row.lastUsedAt).toBe(hour);
    expect(after.body).not.toContain(fresh.key);
    // One event for both uses within the hour.
    const uses = (await readAllEvents(h.streams, h.streams.topology)).filter((e) => e.envelope.type === "apikey.used" && e.envelope.aggregateId === fresh.keyId);
    expect(uses).toHaveLength(1);
    expect((await h.call({ method: "GET", url: `/v1/tenants/${fresh.tenantId}/api-keys`, token: fresh.key })).statusCode).toBe(403);
  });
});
