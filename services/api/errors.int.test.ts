import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTenantWithKey, MAX_BODY_BYTES, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["ingest", "webhooks:read", "webhooks:write", "deliveries:read"]);
});
afterAll(() => h?.stop());

const ingest = (body: unknown, headers: Record<string, string> = {}) =>
  h.call({ method: "POST", url: "/v1/webhooks/ingest", token: t.key, tenantId: t.tenantId, body, headers });

const expectShape = (res: { json(): any }, code: string) => {
  const body = res.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String) });
  expect(JSON.stringify(body)).not.toMatch(/at .+\.(ts|js):\d+/); // no stack
  return body.error;
};

describe("request plumbing", () => {
  it("echoes X-Request-Id, or generates one, on every response", async () => {
    const given = await h.call({ method: "GET", url: "/health", headers: { "x-request-id": "req-123" } });
    expect(given.headers["x-request-id"]).toBe("req-123");
    const generated = await h.call({ method: "GET", url: "/nope" });
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(expectShape(generated, "not_found").requestId).toBe(generated.headers["x-request-id"]);
  });

  it("answers X-Zen-Contract-Version: 1 and refuses another version", async () => {
    const ok = await h.call({ method: "GET", url: "/health" });
    expect(ok.headers["x-zen-contract-version"]).toBe("1");
    const res = await h.call({ method: "GET", url: "/health", headers: { "x-zen-contract-version": "2" } });
    expect(res.statusCode).toBe(400);
    expect(res.headers["x-zen-contract-version"]).toBe("1");
    expectShape(res, "unsupported_contract_version");
  });

  it("health and readiness", async () => {
    expect((await h.call({ method: "GET", url: "/health", token: null })).json()).toEqual({ status: "ok" });
    const ready = await h.call({ method: "GET", url: "/ready", token: null });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready", checks: { nats: true, postgres: true } });
    const { buildApp } = await import("./app.js");
    const down = await buildApp({ ...h.deps, readiness: async () => ({ nats: true, postgres: false }) });
    const res = await down.inject({ method: "GET", url: "/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: "unavailable", checks: { nats: true, postgres: false } });
    await down.close();
  });
});

describe("error shapes", () => {
  it("400 invalid_request with details on a bad body", async () => {
    const res = await ingest({ eventType: "", payload: [1] });
    expect(res.statusCode).toBe(400);
    const error = expectShape(res, "invalid_request");
    expect(error.details).toEqual(
      expect.arrayContaining([
        { path: "body.eventType", message: expect.any(String) },
        { path: "body.payload", message: expect.any(String) },
      ]),
    );
  });

  it("400 on unknown body fields", async () => {
    const res = await ingest({ eventType: "a.b", payload: {}, extra: 1 });
    expect(res.statusCode).toBe(400);
    expect(JSON.stringify(expectShape(res, "invalid_request").details)).toMatch(/extra/);
  });

  it("400 on malformed JSON and on a bad query", async () => {
    expectShape(await ingest("{not json"), "invalid_request");
    const res = await h.call({ method: "GET", url: "/v1/webhooks/deliveries?limit=501", token: t.key, tenantId: t.tenantId });
    expect(res.statusCode).toBe(400);
    expect(expectShape(res, "invalid_request").details[0].path).toBe("query.limit");
  });

  it("415 when the body is not JSON", async () => {
    const res = await ingest("eventType=a", { "content-type": "text/plain" });
    expect(res.statusCode).toBe(415);
    expectShape(res, "unsupported_media_type");
    const form = await ingest("a=b", { "content-type": "application/x-www-form-urlencoded" });
    expect(form.statusCode).toBe(415);
  });

  it("413 when the body is too large", async () => {
    const res = await ingest({ eventType: "a.b", payload: { big: "x".repeat(MAX_BODY_BYTES) } });
    expect(res.statusCode).toBe(413);
    expectShape(res, "payload_too_large");
  });

  it("404 not_found on an unknown route and on a malformed id", async () => {
    expectShape(await h.call({ method: "GET", url: "/v1/nothing" }), "not_found");
    const res = await h.call({ method: "GET", url: "/v1/webhooks/registry/not-an-id", token: t.key, tenantId: t.tenantId });
    expect(res.statusCode).toBe(404);
    expectShape(res, "not_found");
  });

  it("422 unprocessable on a bad URL, a private target or an unknown pattern", async () => {
    for (const [url, eventTypes] of [
      ["ftp://example.com/x", ["a.b"]],
      ["http://127.0.0.1:8080/x", ["a.b"]],
      ["https://example.com/x", ["a.**"]],
    ]) {
      const res = await h.call({ method: "POST", url: "/v1/webhooks/registry", token: t.key, tenantId: t.tenantId, body: { url, eventTypes } });
      expect(res.statusCode, String(url)).toBe(422);
      expectShape(res, "unprocessable");
    }
  });

  it("503 dependency_unavailable when the store is unreachable, 500 says nothing", async () => {
    const { buildApp } = await import("./app.js");
    const { TimeoutError } = await import("@nats-io/transport-node");
    const failing = (error: Error) =>
      ({
        ...h.deps.store,
        append: async () => {
          throw error;
        },
      }) as typeof h.deps.store;
    for (const [error, status, code] of [
      [new TimeoutError(), 503, "dependency_unavailable"],
      [new Error("secret internals"), 500, "internal_error"],
    ] as const) {
      const app = await buildApp({ ...h.deps, store: failing(error) });
      const res = await app.inject({
        method: "POST",
        url: "/v1/webhooks/ingest",
        payload: { eventType: "a.b", payload: {} },
        headers: { authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId },
      });
      expect(res.statusCode).toBe(status);
      expect(expectShape(res, code).message).not.toMatch(/secret internals/);
      await app.close();
    }
  });
});

describe("OpenAPI", () => {
  it("/docs/openapi.json lists the routes", async () => {
    const res = await h.call({ method: "GET", url: "/docs/openapi.json", token: null });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      "/v1/tenants",
      "/v1/tenants/{tenantId}/api-keys",
      "/v1/webhooks/ingest",
      "/v1/webhooks/registry",
      "/v1/webhooks/registry/{id}",
      "/v1/webhooks/deliveries",
      "/v1/webhooks/deliveries/{id}",
      "/v1/webhooks/dlq",
      "/health",
      "/ready",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    expect(doc.paths["/v1/webhooks/registry"].post.requestBody.content["application/json"].schema.properties.url.description).toMatch(/http/);
    expect((await h.call({ method: "GET", url: "/docs", token: null })).statusCode).toBeLessThan(400);
  });
});
