import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

const WINDOW_MS = 20_000;

/** Deliveries per second that reached `path` over the 20 s window starting at its first arrival. */
function rateOver20s(receiver: Receiver, path: string): number {
  const arrivals = receiver.on(path).map((r) => r.at).sort((a, b) => a - b);
  const start = arrivals[0]!;
  return arrivals.filter((at) => at < start + WINDOW_MS).length / (WINDOW_MS / 1000);
}

describe("outbound rate limits hold within 10 % over a 20-second run", () => {
  let zen: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    zen = await startTestPlatform();
  });
  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it("holds an endpoint's rateLimit.perSecond and a tenant's outbound bucket, spending no attempts", async () => {
    const admin = apiClient(zen.url, { token: ADMIN_TOKEN });
    const tenantId = (await admin("POST", "/v1/tenants", { name: "Limits" })).body.id as string;
    const key = (await admin("POST", `/v1/tenants/${tenantId}/api-keys`, { name: "k", scopes: ["ingest", "webhooks:write", "deliveries:read"] })).body.key;
    const tenant = apiClient(zen.url, { token: key, tenantId });
    // One endpoint limited to 25/s on its own; a second tenant's two endpoints share a 15/s bucket.
    const limited = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url("/limited"), eventTypes: ["limited.*"], rateLimit: { perSecond: 25 } });
    expect(limited.status).toBe(201);

    const otherId = (await admin("POST", "/v1/tenants", { name: "Shared bucket" })).body.id as string;
    const limits = await admin("PUT", `/v1/tenants/${otherId}/limits`, { outbound: { capacity: 5, refillPerSecond: 15 } });
    expect(limits.status).toBe(200);
    const otherKey = (await admin("POST", `/v1/tenants/${otherId}/api-keys`, { name: "k", scopes: ["ingest", "webhooks:write"] })).body.key;
    const other = apiClient(zen.url, { token: otherKey, tenantId: otherId });
    for (const path of ["/shared-a", "/shared-b"]) {
      expect((await other("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes: ["shared.*"] })).status).toBe(201);
    }

    // Enough events that both limits stay saturated for the whole window.
    const ingests = [];
    for (let i = 0; i < 700; i++) ingests.push(tenant("POST", "/v1/webhooks/ingest", { eventType: "limited.tick", payload: { i } }));
    for (let i = 0; i < 200; i++) ingests.push(other("POST", "/v1/webhooks/ingest", { eventType: "shared.tick", payload: { i } }));
    expect((await Promise.all(ingests)).every((r) => r.status === 202)).toBe(true);

    await eventually(() => {
      const first = Math.min(...["/limited", "/shared-a", "/shared-b"].map((p) => receiver.on(p)[0]?.at ?? Infinity));
      return Date.now() > first + WINDOW_MS + 500;
    }, 40_000, "a 20 s window of deliveries");

    const endpointRate = rateOver20s(receiver, "/limited");
    expect(endpointRate).toBeGreaterThanOrEqual(25 * 0.9);
    expect(endpointRate).toBeLessThanOrEqual(25 * 1.1);
    const shared = [...receiver.on("/shared-a"), ...receiver.on("/shared-b")].map((r) => r.at).sort((a, b) => a - b);
    const sharedRate = shared.filter((at) => at < shared[0]! + WINDOW_MS).length / (WINDOW_MS / 1000);
    expect(sharedRate).toBeGreaterThanOrEqual(15 * 0.9);
    expect(sharedRate).toBeLessThanOrEqual(15 * 1.1);

    // Waiting for a token is not a failed attempt.
    const deliveries = await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=20");
    expect(deliveries.body.data.every((d: { attempts: number }) => d.attempts === 1)).toBe(true);
  });
});
