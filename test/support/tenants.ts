import { expect } from "vitest";
import { ADMIN_TOKEN, apiClient } from "./platform.js";

/** Every scope a tenant API key can hold (API.md "Credentials and scopes", all but `admin`). */
export const TENANT_SCOPES = ["ingest", "webhooks:read", "webhooks:write", "deliveries:read", "dlq:replay", "audit:read"];

export type Client = ReturnType<typeof apiClient>;

export interface TestTenant {
  id: string;
  keyId: string;
  /** The API key in plain text (zk_…), as its creation showed it once. */
  key: string;
  /** A client with the key and the tenant's own X-Tenant-Id. */
  client: Client;
}

/** Creates a tenant and an API key for it through the operator's api, as a client would. */
export async function createTenant(
  baseUrl: string,
  name: string,
  scopes: string[] = TENANT_SCOPES,
  operator: Client = apiClient(baseUrl, { token: ADMIN_TOKEN }),
): Promise<TestTenant> {
  const tenant = await operator("POST", "/v1/tenants", { name });
  expect(tenant.status).toBe(201);
  const key = await operator("POST", `/v1/tenants/${tenant.body.id}/api-keys`, { name: `${name} key`, scopes });
  expect(key.status).toBe(201);
  return { id: tenant.body.id, keyId: key.body.id, key: key.body.key, client: apiClient(baseUrl, { token: key.body.key, tenantId: tenant.body.id }) };
}

/** The delivery ids of an endpoint's DLQ entries, every page. */
export async function dlqOf(client: Client, endpointId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: { data: Array<{ deliveryId: string }>; nextCursor: string | null } } = await client(
      "GET",
      `/v1/webhooks/dlq?endpointId=${endpointId}&limit=500${cursor ? `&cursor=${cursor}` : ""}`,
    );
    expect(page.status).toBe(200);
    ids.push(...page.body.data.map((e) => e.deliveryId));
    cursor = page.body.nextCursor;
  } while (cursor);
  return ids;
}

/** A retry policy that dead-letters an always-failing delivery within a second. */
export const QUICK_DEATH = { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 100, factor: 2, maxDurationMs: 60_000 };
