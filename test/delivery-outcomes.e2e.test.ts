import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../contracts/envelope.js";
import { createTopology } from "../streams/topology.js";
import { readAllEvents } from "./support/nats.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { eventually, startReceiver, type Behaviour, type Receiver } from "./support/receiver.js";
import { attemptRecordedBy } from "../domain/delivery/delivery.js";

const FAST_RETRIES = { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 200, factor: 2, maxDurationMs: 60_000 };

/** A receiver that misbehaves on demand, and what each misbehaviour must lead to (API.md's table). */
const CASES: Array<{ name: string; script: Behaviour[]; status: "succeeded" | "dead"; classes: string[] }> = [
  { name: "500-then-200", script: [{ status: 500 }, { status: 200 }], status: "succeeded", classes: ["server_error", "none"] },
  { name: "429-retry-after", script: [{ status: 429, headers: { "retry-after": "1" } }, { status: 200 }], status: "succeeded", classes: ["rate_limited", "none"] },
  { name: "503-then-200", script: [{ status: 503 }, { status: 200 }], status: "succeeded", classes: ["unavailable", "none"] },
  { name: "hang", script: [{ hang: true }, { status: 200 }], status: "succeeded", classes: ["timeout", "none"] },
  { name: "reset", script: [{ reset: true }, { status: 200 }], status: "succeeded", classes: ["connection_error", "none"] },
  { name: "slow-body", script: [{ slowBody: true, status: 200, chunkEveryMs: 100 }, { status: 200 }], status: "succeeded", classes: ["timeout", "none"] },
  { name: "always-500", script: [{ status: 500 }], status: "dead", classes: Array(FAST_RETRIES.maxAttempts).fill("server_error") },
  { name: "301", script: [{ status: 301, headers: { location: "/moved" } }], status: "dead", classes: ["redirect"] },
  { name: "400", script: [{ status: 400 }], status: "dead", classes: ["client_error"] },
  { name: "410", script: [{ status: 410 }], status: "dead", classes: ["gone"] },
];

describe("delivery outcomes against a receiver that misbehaves on demand", () => {
  let zen: TestPlatform;
  let receiver: Receiver;
  let tenant: ReturnType<typeof apiClient>;
  const deliveries = new Map<string, { deliveryId: string; endpointId: string; messageId: string }>();

  beforeAll(async () => {
    receiver = await startReceiver();
    zen = await startTestPlatform();
    tenant = (await createTenant(zen.url, "Outcomes", ["ingest", "webhooks:write", "webhooks:read", "deliveries:read"])).client;
    for (const c of CASES) {
      const path = `/case/${c.name}`;
      receiver.behave(path, ...c.script);
      const endpoint = await tenant("POST", "/v1/webhooks/registry", {
        url: receiver.url(path),
        eventTypes: [`case.${c.name}`],
        retryPolicy: FAST_RETRIES,
        deliveryPolicy: { timeoutMs: 1_000 },
      });
      expect(endpoint.status).toBe(201);
      receiver.setSecret(path, endpoint.body.secret);
      const message = await tenant("POST", "/v1/webhooks/ingest", { eventType: `case.${c.name}`, payload: { case: c.name } });
      expect(message.status).toBe(202);
      deliveries.set(c.name, { deliveryId: "", endpointId: endpoint.body.id, messageId: message.body.messageId });
    }
    await eventually(
      async () => {
        for (const [name, d] of deliveries) {
          const list = await tenant("GET", `/v1/webhooks/deliveries?messageId=${d.messageId}`);
          const row = list.body.data?.[0];
          if (!row || (row.status !== "succeeded" && row.status !== "dead")) return false;
          deliveries.set(name, { ...d, deliveryId: row.id });
        }
        return true;
      },
      60_000,
      "every delivery to finish",
    );
  }, 90_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it.each(CASES)("$name ends $status, each attempt's class and reason recorded", async (c) => {
    const d = deliveries.get(c.name)!;
    const detail = await tenant("GET", `/v1/webhooks/deliveries/${d.deliveryId}`);
    expect(detail.body.status).toBe(c.status);
    expect(detail.body.attempts.map((a: { errorClass: string }) => a.errorClass)).toEqual(c.classes);
    // Every failed attempt says why, and a dead delivery says why it died.
    for (const attempt of detail.body.attempts.filter((a: { errorClass: string }) => a.errorClass !== "none")) expect(attempt.error ?? "").not.toBe("");
    if (c.status === "dead") expect(detail.body.deadReason ?? "").not.toBe("");
    const events = (await readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix)))
      .map((e) => e.envelope)
      .filter((e: Envelope) => e.aggregateId === d.deliveryId);
    const attempted = events.flatMap((e) => attemptRecordedBy(e)?.errorClass ?? []);
    expect(attempted).toEqual(c.classes);
    const last = events.at(-1)!;
    expect(last.type).toBe(c.status === "succeeded" ? "delivery.succeeded" : "delivery.dead_lettered");
    if (c.status === "dead") expect((last.data as { reason: string }).reason).not.toBe("");
  });

  it("waits at least Retry-After before retrying a 429", () => {
    const arrivals = receiver.on("/case/429-retry-after").map((r) => r.at);
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(950);
  });

  it("never follows a redirect", () => {
    expect(receiver.on("/moved")).toHaveLength(0);
    expect(receiver.on("/case/301")).toHaveLength(1);
  });

  it("keeps the webhook-id of every retry equal to the message id", () => {
    const d = deliveries.get("500-then-200")!;
    expect(receiver.on("/case/500-then-200").map((r) => r.webhookId)).toEqual([d.messageId, d.messageId]);
  });

  it("disables the endpoint that answered 410", async () => {
    const d = deliveries.get("410")!;
    await eventually(async () => (await tenant("GET", `/v1/webhooks/registry/${d.endpointId}`)).body.active === false, 10_000, "the endpoint to be disabled");
    const endpoint = await tenant("GET", `/v1/webhooks/registry/${d.endpointId}`);
    expect(endpoint.body.disabledReason).toMatch(/410/);
  });
});
