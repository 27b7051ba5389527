import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { ADMIN_TOKEN, apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { readAllEvents } from "./support/nats.js";
import { createTopology } from "../streams/topology.js";
import { attemptRecordedBy } from "../domain/delivery/delivery.js";

const TYPES = ["invoice.paid", "invoice.paid.v2", "user.created", "user.deleted", "order.shipped"] as const;
const EVENTS = 300;

/** Which endpoint patterns match which types, by API.md's rules. */
const ENDPOINTS = [
  { path: "/ep/all", eventTypes: ["*"], matches: () => true },
  { path: "/ep/invoices", eventTypes: ["invoice.*"], matches: (t: string) => t.startsWith("invoice.") },
  { path: "/ep/users-created", eventTypes: ["user.created"], matches: (t: string) => t === "user.created" },
  { path: "/ep/broken", eventTypes: ["order.shipped"], matches: (t: string) => t === "order.shipped" },
];
const BROKEN_POLICY = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100, factor: 2, maxDurationMs: 60_000 };

describe("the spine: ingest → route → signed delivery → read models", () => {
  let receiver: Receiver;
  let zen: TestPlatform;
  let tenant: ReturnType<typeof apiClient>;
  const endpointIds = new Map<string, string>();
  const secrets: string[] = [];
  const messages: Array<{ messageId: string; eventType: string }> = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.behave("/ep/broken", { status: 500 });
    // This test checks the retry policy to the DLQ; the circuit breaker (which would stop attempts
    // to the always-500 endpoint after 5) has its own tests.
    zen = await startTestPlatform({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000" });
    const admin = apiClient(zen.url, { token: ADMIN_TOKEN });
    const created = await admin("POST", "/v1/tenants", { name: "Acme" });
    expect(created.status).toBe(201);
    const key = await admin("POST", `/v1/tenants/${created.body.id}/api-keys`, {
      name: "e2e",
      scopes: ["ingest", "webhooks:read", "webhooks:write", "deliveries:read"],
    });
    expect(key.status).toBe(201);
    tenant = apiClient(zen.url, { token: key.body.key, tenantId: created.body.id });
    for (const endpoint of ENDPOINTS) {
      const response = await tenant("POST", "/v1/webhooks/registry", {
        url: receiver.url(endpoint.path),
        eventTypes: endpoint.eventTypes,
        ...(endpoint.path === "/ep/broken" ? { retryPolicy: BROKEN_POLICY } : {}),
      });
      expect(response.status).toBe(201);
      expect(response.body.secret).toMatch(/^whsec_/);
      receiver.setSecret(endpoint.path, response.body.secret);
      endpointIds.set(endpoint.path, response.body.id);
      secrets.push(response.body.secret);
    }
    for (let i = 0; i < EVENTS; i++) {
      const eventType = TYPES[i % TYPES.length]!;
      const response = await tenant("POST", "/v1/webhooks/ingest", { eventType, payload: { n: i } });
      expect(response.status).toBe(202);
      messages.push({ messageId: response.body.messageId, eventType });
    }
  }, 120_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  const expectedFor = (path: string) => {
    const endpoint = ENDPOINTS.find((e) => e.path === path)!;
    return messages.filter((m) => endpoint.matches(m.eventType)).map((m) => m.messageId);
  };

  it("delivers every event to exactly the matching endpoints, once each, with valid signatures", async () => {
    const healthy = ENDPOINTS.filter((e) => e.path !== "/ep/broken");
    await eventually(
      () => healthy.every((e) => new Set(receiver.on(e.path).map((r) => r.webhookId)).size === expectedFor(e.path).length),
      60_000,
      "every matching delivery to arrive",
    );
    for (const endpoint of healthy) {
      const got = receiver.on(endpoint.path);
      expect(got.every((r) => r.verified)).toBe(true);
      expect(got.map((r) => r.webhookId).sort()).toEqual(expectedFor(endpoint.path).sort());
    }
    const sample = receiver.on("/ep/invoices")[0]!;
    expect(sample.body.type).toMatch(/^invoice\./);
    expect(Object.keys(sample.body)).toEqual(["type", "timestamp", "data"]);
  });

  it("shows the deliveries succeeded in the read model", async () => {
    const expectedSucceeded = ENDPOINTS.filter((e) => e.path !== "/ep/broken").reduce((n, e) => n + expectedFor(e.path).length, 0);
    await eventually(
      async () => {
        let count = 0;
        let cursor: string | null = null;
        do {
          const query: string = `/v1/webhooks/deliveries?status=succeeded&limit=500${cursor ? `&cursor=${cursor}` : ""}`;
          const page = await tenant("GET", query);
          count += page.body.data.length;
          cursor = page.body.nextCursor;
        } while (cursor);
        return count === expectedSucceeded;
      },
      30_000,
      "the read model to show every delivery succeeded",
    );
  });

  it("dead-letters the always-500 endpoint's deliveries after maxAttempts, every attempt recorded", async () => {
    const broken = endpointIds.get("/ep/broken")!;
    const expected = expectedFor("/ep/broken").length;
    await eventually(
      async () => {
        const page = await tenant("GET", `/v1/webhooks/dlq?endpointId=${broken}&limit=500`);
        return page.body.data.length === expected;
      },
      60_000,
      "the broken endpoint's deliveries to reach the DLQ",
    );
    const list = await tenant("GET", `/v1/webhooks/deliveries?endpointId=${broken}&limit=5`);
    for (const delivery of list.body.data) {
      expect(delivery.status).toBe("dead");
      const detail = await tenant("GET", `/v1/webhooks/deliveries/${delivery.id}`);
      expect(detail.body.attempts).toHaveLength(BROKEN_POLICY.maxAttempts);
      expect(detail.body.attempts.every((a: { statusCode: number }) => a.statusCode === 500)).toBe(true);
      expect(detail.body.routing.targets.map((t: { endpointId: string }) => t.endpointId)).toContain(broken);
    }
    expect(receiver.on("/ep/broken")).toHaveLength(expected * BROKEN_POLICY.maxAttempts);
  });

  it("holds the evidence in the stream: received, routed, scheduled, attempted, succeeded", async () => {
    const events = await readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix));
    const count = (type: string) => events.filter((e) => e.envelope.type === type).length;
    const succeeded = ENDPOINTS.filter((e) => e.path !== "/ep/broken").reduce((n, e) => n + expectedFor(e.path).length, 0);
    const scheduled = succeeded + expectedFor("/ep/broken").length;
    expect(count("message.received")).toBe(EVENTS);
    expect(count("routing.decided")).toBe(EVENTS);
    expect(count("delivery.scheduled")).toBe(scheduled);
    expect(count("delivery.succeeded")).toBe(succeeded);
    // Each attempt is recorded in the outcome that settles it (one event), none on its own.
    expect(count("delivery.attempted")).toBe(0);
    expect(events.filter((e) => attemptRecordedBy(e.envelope)).length).toBe(succeeded + expectedFor("/ep/broken").length * BROKEN_POLICY.maxAttempts);
    expect(count("delivery.dead_lettered")).toBe(expectedFor("/ep/broken").length);
  });

  it("never shows an endpoint secret in plain text in events, logs or read-model rows", async () => {
    const events = JSON.stringify(await readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix)));
    const logs = zen.logLines.join("");
    const tables = await zen.platform.db!.any(sql.unsafe`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    let rows = "";
    for (const { table_name } of tables as Array<{ table_name: string }>) {
      rows += JSON.stringify(await zen.platform.db!.any(sql.unsafe`SELECT * FROM ${sql.identifier([table_name])}`));
    }
    expect(rows.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      const raw = secret.slice("whsec_".length);
      for (const haystack of [events, logs, rows]) {
        expect(haystack.includes(secret)).toBe(false);
        expect(haystack.includes(raw)).toBe(false);
      }
    }
  });
});
