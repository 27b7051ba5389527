import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { z } from "zod";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { readAllEvents } from "./support/nats.js";
import { createTopology } from "../streams/topology.js";
import { statusClass } from "../services/shared/metrics.js";
import { parseMetrics as parse, total } from "./support/metrics.js";
import { attemptRecordedBy } from "../domain/delivery/delivery.js";

const EVENTS = 30;
const TYPES = ["invoice.paid", "order.shipped", "user.created"] as const;
/** /ep/ok takes everything; /ep/bad answers 400 (dead at once); /ep/flaky answers 500 (a retry, then dead). */
const ENDPOINTS = [
  { path: "/ep/ok", eventTypes: ["*"] },
  { path: "/ep/bad", eventTypes: ["order.*"] },
  { path: "/ep/flaky", eventTypes: ["user.*"], retryPolicy: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 50, factor: 2, maxDurationMs: 60_000 } },
];

/** Every metric the issue names; the dashboards and alerts query these. */
const METRICS = [
  "webhook_ingest_requests_total",
  "webhook_inbound_requests_total",
  "webhook_signature_failures_total",
  "webhook_delivery_attempts_total",
  "webhook_delivery_attempt_duration_seconds",
  "webhook_delivery_latency_seconds",
  "webhook_retries_total",
  "webhook_dlq_size",
  "webhook_circuit_open_endpoints",
  "webhook_consumer_pending",
  "webhook_consumer_ack_pending",
  "webhook_projection_lag_events",
  "http_request_duration_seconds",
];

describe("metrics after an end-to-end run", () => {
  let receiver: Receiver;
  let zen: TestPlatform;
  let tenant: ReturnType<typeof apiClient>;
  let text: string;
  let samples: Map<string, number>;

  const scrape = async () => {
    const response = await fetch(`${zen.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    text = await response.text();
    samples = parse(text);
    return samples;
  };
  const streamEvents = async () => readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix));
  const dlqRows = async () => zen.platform.db!.oneFirst(sql.type(z.object({ count: z.number() }))`SELECT count(*)::int AS count FROM dlq_entries`);

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.behave("/ep/bad", { status: 400 });
    receiver.behave("/ep/flaky", { status: 500 });
    // Circuits are not what this test is about: keep them closed.
    zen = await startTestPlatform({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000" });
    tenant = (await createTenant(zen.url, "Metrics", ["ingest", "webhooks:read", "webhooks:write", "deliveries:read"])).client;
    let okEndpoint = "";
    for (const { path, ...rest } of ENDPOINTS) {
      const response = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url(path), ...rest });
      expect(response.status).toBe(201);
      receiver.setSecret(path, response.body.secret);
      if (path === "/ep/ok") okEndpoint = response.body.id;
    }
    for (let i = 0; i < EVENTS; i++) {
      const response = await tenant("POST", "/v1/webhooks/ingest", { eventType: TYPES[i % TYPES.length], payload: { n: i }, eventId: `evt-${i}` });
      expect(response.status).toBe(202);
    }
    // A duplicate eventId, a refused body, and a test send (which is no delivery and must not count as one).
    expect((await tenant("POST", "/v1/webhooks/ingest", { eventType: "invoice.paid", payload: {}, eventId: "evt-0" })).status).toBe(409);
    expect((await tenant("POST", "/v1/webhooks/ingest", { eventType: "", payload: [] })).status).toBe(400);
    expect((await tenant("POST", "/v1/webhooks/test", { endpointId: okEndpoint, eventType: "invoice.paid", payload: {} })).status).toBe(200);

    // Settled: every delivery succeeded or dead-lettered, and the read models have it all.
    await eventually(
      async () => {
        const events = await streamEvents();
        const count = (type: string) => events.filter((e) => e.envelope.type === type).length;
        return count("delivery.scheduled") > 0 && count("delivery.succeeded") + count("delivery.dead_lettered") === count("delivery.scheduled");
      },
      60_000,
      "every delivery to end",
    );
    await eventually(
      async () => {
        const lag = total(await scrape(), "webhook_projection_lag_events", { projection: "read_models" });
        const pending = total(samples, "webhook_consumer_pending") + total(samples, "webhook_consumer_ack_pending");
        return lag === 0 && pending === 0;
      },
      30_000,
      "the read models and the consumers to catch up",
    );
  }, 120_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it("exposes every metric of the issue, and the default process metrics", () => {
    for (const name of METRICS) expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
  });

  it("counts exactly the attempts recorded in the stream, by outcome and status class", async () => {
    const events = await streamEvents();
    const attempted = events.flatMap((e) => attemptRecordedBy(e.envelope) ?? []);
    const count = (type: string) => events.filter((e) => e.envelope.type === type).length;
    expect(attempted.length).toBeGreaterThan(EVENTS);
    expect(total(samples, "webhook_delivery_attempts_total")).toBe(attempted.length);
    expect(total(samples, "webhook_delivery_attempts_total", { outcome: "succeeded" })).toBe(count("delivery.succeeded"));
    expect(total(samples, "webhook_delivery_attempts_total", { outcome: "retry" })).toBe(count("delivery.retry_scheduled"));
    expect(total(samples, "webhook_delivery_attempts_total", { outcome: "dead" })).toBe(count("delivery.dead_lettered"));
    expect(total(samples, "webhook_retries_total")).toBe(count("delivery.retry_scheduled"));
    for (const cls of ["2xx", "4xx", "5xx"]) {
      const inStream = attempted.filter((attempt) => statusClass(attempt.statusCode ?? null) === cls).length;
      expect(inStream, cls).toBeGreaterThan(0);
      expect(total(samples, "webhook_delivery_attempts_total", { status_class: cls }), cls).toBe(inStream);
    }
    expect(total(samples, "webhook_delivery_attempt_duration_seconds_count")).toBe(attempted.length);
    expect(total(samples, "webhook_delivery_latency_seconds_count")).toBe(count("delivery.succeeded"));
    const latencySum = total(samples, "webhook_delivery_latency_seconds_sum");
    expect(latencySum).toBeGreaterThan(0);
    expect(latencySum / count("delivery.succeeded")).toBeLessThan(60);
    // The test send reached the receiver but is counted nowhere among deliveries.
    expect(receiver.on("/ep/ok").length).toBe(count("delivery.succeeded") + 1);
  });

  it("shows the DLQ read model's size, and no open circuit", async () => {
    const rows = await dlqRows();
    expect(rows).toBeGreaterThan(0);
    expect(total(await scrape(), "webhook_dlq_size")).toBe(rows);
    expect(total(samples, "webhook_circuit_open_endpoints")).toBe(0);
  });

  it("counts ingest outcomes and times requests by route pattern", () => {
    expect(total(samples, "webhook_ingest_requests_total", { outcome: "accepted" })).toBe(EVENTS);
    expect(total(samples, "webhook_ingest_requests_total", { outcome: "duplicate" })).toBe(1);
    expect(total(samples, "webhook_ingest_requests_total", { outcome: "rejected" })).toBe(1);
    expect(total(samples, "webhook_ingest_requests_total", { outcome: "error" })).toBe(0);
    const ingest = { route: "/v1/webhooks/ingest", method: "POST" };
    expect(total(samples, "http_request_duration_seconds_count", { ...ingest, status_class: "2xx" })).toBe(EVENTS);
    expect(total(samples, "http_request_duration_seconds_count", { ...ingest, status_class: "4xx" })).toBe(2);
    expect(total(samples, "http_request_duration_seconds_count", { route: "/v1/tenants/:tenantId/api-keys" })).toBe(1);
  });

  it("reads the consumers' backlog and unacked messages for each durable this process runs", () => {
    for (const consumer of ["router", "dispatcher", "replayer"]) {
      expect(samples.get(`webhook_consumer_pending{consumer="${consumer}"}`), consumer).toBe(0);
      expect(samples.get(`webhook_consumer_ack_pending{consumer="${consumer}"}`), consumer).toBe(0);
    }
  });

  it("never puts an id or a URL in a label", () => {
    expect(text).not.toMatch(/"(msg|dlv|ep|ten|key)_[0-9A-Z]/);
    expect(text).not.toContain("127.0.0.1");
    expect(text).not.toMatch(/route="\/v1\/[^"]*\/(msg|dlv|ep|ten)_/);
  });

  it("logs one line per request with the request id (as correlationId) and the tenant", () => {
    const lines = zen.logLines
      .flatMap((chunk) => chunk.split("\n"))
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const ingests = lines.filter((l) => l.msg === "request completed" && l.route === "/v1/webhooks/ingest" && l.statusCode === 202);
    expect(ingests).toHaveLength(EVENTS);
    for (const line of ingests) {
      expect(line.correlationId).toEqual(expect.any(String));
      expect(line.tenantId).toMatch(/^ten_/);
      expect(line.responseTimeMs).toEqual(expect.any(Number));
    }
    expect(lines.some((l) => l.msg === "incoming request")).toBe(false);
    expect(lines.filter((l) => l.msg === "delivery attempt")).not.toHaveLength(0);
  });
});
