import { randomUUID } from "node:crypto";
import { ADMIN_TOKEN } from "./env.js";

/**
 * Sets up what a user would through the public API: a tenant, an API key, endpoints. Each bench
 * tenant gets an ingress limit far above any offered load (`BENCH_INGRESS`), so the benchmark
 * measures the platform, not its throttle; mutations carry an Idempotency-Key like a careful client.
 */
async function call<T>(base: string, method: string, path: string, token: string, body?: unknown, tenantId?: string): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(tenantId ? { "x-tenant-id": tenantId } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(method === "POST" || method === "PATCH" || method === "DELETE" ? { "idempotency-key": randomUUID() } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface BenchTenant {
  base: string;
  tenantId: string;
  key: string;
  /** Headers of an ingest request with this tenant's key. */
  headers: Record<string, string>;
}

/** The ingress bucket every bench tenant gets: a million a second, far above what the bench offers. */
export const BENCH_INGRESS = { capacity: 1_000_000, refillPerSecond: 1_000_000 };

export async function createTenant(base: string, name: string): Promise<BenchTenant> {
  const tenant = await call<{ id: string }>(base, "POST", "/v1/tenants", ADMIN_TOKEN, { name });
  await call(base, "PUT", `/v1/tenants/${tenant.id}/limits`, ADMIN_TOKEN, { ingress: BENCH_INGRESS });
  const key = await call<{ key: string }>(base, "POST", `/v1/tenants/${tenant.id}/api-keys`, ADMIN_TOKEN, {
    name: "bench",
    scopes: ["ingest", "webhooks:read", "webhooks:write", "deliveries:read"],
  });
  return {
    base,
    tenantId: tenant.id,
    key: key.key,
    headers: { authorization: `Bearer ${key.key}`, "x-tenant-id": tenant.id, "content-type": "application/json" },
  };
}

export interface EndpointOptions {
  url: string;
  eventTypes?: string[];
  retryPolicy?: Record<string, number>;
}

/** Registers an endpoint; returns its id and the secret (shown once) for the receiver. */
export async function createEndpoint(tenant: BenchTenant, options: EndpointOptions): Promise<{ id: string; secret: string }> {
  const body = { url: options.url, eventTypes: options.eventTypes ?? ["*"], ...(options.retryPolicy ? { retryPolicy: options.retryPolicy } : {}) };
  return call<{ id: string; secret: string }>(tenant.base, "POST", "/v1/webhooks/registry", tenant.key, body, tenant.tenantId);
}

/** A 1 KiB ingest body (the JSON text is padded to exactly `bytes`). */
export function ingestBody(eventType: string, bytes = 1024, extra: Record<string, unknown> = {}): string {
  const base = JSON.stringify({ eventType, payload: { ...extra, pad: "" } });
  const pad = "x".repeat(Math.max(0, bytes - base.length));
  return JSON.stringify({ eventType, payload: { ...extra, pad } });
}
