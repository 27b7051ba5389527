import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

const WINDOW_MS = 20_000;
/**
 * The window starts at this arrival, past the bucket's initial burst and the first seconds in
 * which the backlog is still being ingested and routed (the limiter is then not yet the bottleneck).
 */
const WINDOW_STARTS_AT = 50;

/** Deliveries per second over the 20 s window that starts at the 50th arrival (of several paths together). */
function rateOver20s(receiver: Receiver, ...paths: string[]): number {
  const arrivals = paths.flatMap((p) => receiver.on(p).map((r) => r.at)).sort((a, b) => a - b);
  const start = arrivals[WINDOW_STARTS_AT - 1]!;
  return arrivals.filter((at) => at >= start && at < start + WINDOW_MS).length / (WINDOW_MS / 1000);
}

const windowEnd = (receiver: Receiver, ...paths: string[]): number => {
  const arrivals = paths.flatMap((p) => receiver.on(p).map((r) => r.at)).sort((a, b) => a - b);
  return (arrivals[WINDOW_STARTS_AT - 1] ?? Infinity) + WINDOW_MS;
};

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

    // Enough events that both limits stay saturated past the window: 700 at 25/s, 2 × 250 at 15/s.
    const ingests = [];
    for (let i = 0; i < 700; i++) ingests.push(tenant("POST", "/v1/webhooks/ingest", { eventType: "limited.tick", payload: { i } }));
    for (let i = 0; i < 250; i++) ingests.push(other("POST", "/v1/webhooks/ingest", { eventType: "shared.tick", payload: { i } }));
    expect((await Promise.all(ingests)).every((r) => r.status === 202)).toBe(true);

    await eventually(
      () => Date.now() > Math.max(windowEnd(receiver, "/limited"), windowEnd(receiver, "/shared-a", "/shared-b")) + 500,
      60_000,
      "a 20 s window of deliveries on both limits",
    );

    // The backlogs outlast the windows, so the limits (not the supply) set the rates measured.
    const lastArrival = (...paths: string[]) => Math.max(...paths.flatMap((p) => receiver.on(p).map((r) => r.at)));
    await eventually(() => lastArrival("/limited") > windowEnd(receiver, "/limited"), 10_000, "deliveries past the endpoint's window");
    await eventually(() => lastArrival("/shared-a", "/shared-b") > windowEnd(receiver, "/shared-a", "/shared-b"), 10_000, "deliveries past the tenant's window");
    const endpointRate = rateOver20s(receiver, "/limited");
    expect(endpointRate).toBeGreaterThanOrEqual(25 * 0.9);
    expect(endpointRate).toBeLessThanOrEqual(25 * 1.1);
    const sharedRate = rateOver20s(receiver, "/shared-a", "/shared-b");
    expect(sharedRate).toBeGreaterThanOrEqual(15 * 0.9);
    expect(sharedRate).toBeLessThanOrEqual(15 * 1.1);

    // Waiting for a token is not a failed attempt.
    const deliveries = await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=20");
    expect(deliveries.body.data.every((d: { attempts: number }) => d.attempts === 1)).toBe(true);
  });
});
