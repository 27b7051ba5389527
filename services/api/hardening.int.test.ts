import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { ADMIN_TOKEN, startApiHarness, type ApiHarness } from "./testing.js";

const ALLOWED = "https://console.example.com";
let h: ApiHarness;
let app: FastifyInstance;
let base = "";

beforeAll(async () => {
  h = await startApiHarness();
  app = await buildApp({ ...h.deps, config: { ...h.deps.config, maxHeaderBytes: 4 * 1024, corsOrigins: [ALLOWED] } });
  base = await app.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await app?.close();
  await h?.stop();
});

describe("HTTP hardening", () => {
  it("431 headers_too_large in the one error shape above ZEN_MAX_HEADER_BYTES; fine below it", async () => {
    const big = await fetch(`${base}/health`, { headers: { "x-padding": "a".repeat(6 * 1024) } });
    expect(big.status).toBe(431);
    expect(await big.json()).toEqual({ error: { code: "headers_too_large", message: expect.any(String), requestId: expect.any(String) } });
    const small = await fetch(`${base}/health`, { headers: { "x-padding": "a".repeat(2 * 1024) } });
    expect(small.status).toBe(200);
  });

  it("security headers on api answers; the docs keep a CSP that lets the UI load", async () => {
    const res = await fetch(`${base}/v1/webhooks/registry`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers.get("strict-transport-security")).toMatch(/max-age=/);
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(res.headers.get("cross-origin-resource-policy")).toBe("same-site");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const docs = await fetch(`${base}/docs/static/index.html`);
    expect(docs.status).toBe(200);
    const csp = docs.headers.get("content-security-policy") ?? "";
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).not.toMatch(/default-src 'none'|upgrade-insecure-requests/);
  });

  it("CORS only for the configured origins", async () => {
    const preflight = (origin: string) =>
      fetch(`${base}/v1/webhooks/ingest`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,idempotency-key" },
      });
    const allowed = await preflight(ALLOWED);
    expect(allowed.status).toBeLessThan(300);
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(allowed.headers.get("access-control-allow-headers")).toMatch(/idempotency-key/);
    const stranger = await preflight("https://evil.example.com");
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
    const simple = await fetch(`${base}/health`, { headers: { origin: ALLOWED } });
    expect(simple.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(simple.headers.get("access-control-expose-headers")).toMatch(/ratelimit-remaining/);
    // No origins configured (the default): no cross-origin access at all.
    const closed = await h.app.inject({ method: "GET", url: "/health", headers: { origin: ALLOWED } });
    expect(closed.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
