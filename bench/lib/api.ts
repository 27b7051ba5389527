import { ADMIN_TOKEN } from "./env.js";

/**
 * Sets up what a user would through the public API: a tenant, an API key, endpoints.
 * Ingress limits: the platform has no rate limiting yet, so there is no per-tenant limit to raise
 * above the bench's offered load; when one lands, it is set here, through the same API.
 */
async function call<T>(base: string, method: string, path: string, token: string, body?: unknown, tenantId?: string): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(tenantId ? { "x-tenant-id": tenantId } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
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

export async function createTenant(base: string, name: string): Promise<BenchTenant> {
  const tenant = await call<{ id: string }>(base, "POST", "/v1/tenants", ADMIN_TOKEN, { name });
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
