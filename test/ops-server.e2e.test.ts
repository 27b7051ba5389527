import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { z } from "zod";
import { createTopology } from "../streams/topology.js";
import { parseMetrics, total } from "./support/metrics.js";
import { readAllEvents, TEST_NATS_URL } from "./support/nats.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { attemptRecordedBy } from "../domain/delivery/delivery.js";

const EVENTS = 12;
const FAST_RETRY = { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 50, factor: 2, maxDurationMs: 60_000 };

const get = async (url: string) => {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, type: response.headers.get("content-type") ?? "", text };
};

/**
 * A process without the api role: `ZEN_OPS_PORT` gives it `/metrics`, `/health` and `/ready`. The
 * worker roles run in a child process (`services/main.ts`, as `npm start` runs it) beside an
 * api-only platform in this process, on one stream prefix and database.
 */
describe("ops server: metrics and health of a process without the api", () => {
  let receiver: Receiver;
  let api: TestPlatform;
  let workers: PlatformProcess;
  let opsUrl: string;
  let tenant: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.behave("/ep/bad", { status: 400 });
    receiver.behave("/ep/flaky", { status: 500 });
    // The api process: ZEN_OPS_PORT is unused there, its own routes serve /metrics.
    api = await startTestPlatform({ ZEN_ROLES: "api", ZEN_OPS_PORT: "0" });
    const port = await freePort();
    opsUrl = `http://127.0.0.1:${port}`;
    workers = spawnPlatform({
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: api.config.databaseUrl,
      ZEN_STREAM_PREFIX: api.config.streamPrefix,
      ZEN_ROLES: "router,dispatcher,projector,replayer",
      ZEN_OPS_PORT: String(port),
      ZEN_ALLOW_PRIVATE_TARGETS: "true",
      ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000",
    });
    await waitForHttp(`${opsUrl}/health`, 60_000).catch((error: unknown) => {
      throw new Error(`${String(error)}; stderr: ${workers.stderr.join("")}`);
    });

    tenant = (await createTenant(api.url, "Ops", ["ingest", "webhooks:write"])).client;
    for (const [path, eventTypes] of [
      ["/ep/ok", ["*"]],
      ["/ep/bad", ["bad.*"]],
      ["/ep/flaky", ["flaky.*"]],
    ] as const) {
      const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes, retryPolicy: FAST_RETRY });
      expect(endpoint.status).toBe(201);
      receiver.setSecret(path, endpoint.body.secret);
    }
    for (let i = 0; i < EVENTS; i++) {
      const eventType = ["ok.created", "bad.created", "flaky.created"][i % 3]!;
      expect((await tenant("POST", "/v1/webhooks/ingest", { eventType, payload: { n: i } })).status).toBe(202);
    }
  }, 120_000);

  afterAll(async () => {
    if (workers && workers.child.exitCode === null) {
      workers.child.kill("SIGTERM");
      await workers.exited;
    }
    await api?.stop();
    await receiver?.close();
  });

  const streamEvents = () => readAllEvents(api.platform.streams, createTopology(api.config.streamPrefix));

  it("leaves the api's process without a second server", () => {
    expect(api.platform.opsUrl).toBeUndefined();
  });

  it("scrapes the worker roles' metrics from the ops server, matching the stream", async () => {
    await eventually(
      async () => {
        const events = await streamEvents();
        const count = (type: string) => events.filter((e) => e.envelope.type === type).length;
        return count("delivery.scheduled") > 0 && count("delivery.succeeded") + count("delivery.dead_lettered") === count("delivery.scheduled");
      },
      60_000,
      "every delivery to end",
    );
    let samples = new Map<string, number>();
    let text = "";
    await eventually(
      async () => {
        const scrape = await get(`${opsUrl}/metrics`);
        expect(scrape.status).toBe(200);
        expect(scrape.type).toMatch(/^text\/plain/);
        text = scrape.text;
        samples = parseMetrics(text);
        const backlog = total(samples, "webhook_consumer_pending") + total(samples, "webhook_consumer_ack_pending");
        return backlog === 0 && total(samples, "webhook_projection_lag_events", { projection: "read_models" }) === 0;
      },
      30_000,
      "the consumers and the projector to catch up",
    );

    const events = await streamEvents();
    const count = (type: string) => events.filter((e) => e.envelope.type === type).length;
    expect(count("delivery.retry_scheduled")).toBeGreaterThan(0);
    expect(total(samples, "webhook_delivery_attempts_total")).toBe(events.filter((e) => attemptRecordedBy(e.envelope)).length);
    expect(total(samples, "webhook_delivery_attempts_total", { outcome: "succeeded" })).toBe(count("delivery.succeeded"));
    expect(total(samples, "webhook_delivery_attempts_total", { outcome: "dead" })).toBe(count("delivery.dead_lettered"));
    expect(total(samples, "webhook_retries_total")).toBe(count("delivery.retry_scheduled"));
    expect(total(samples, "webhook_delivery_latency_seconds_count")).toBe(count("delivery.succeeded"));
    const dlqRows = await api.platform.db!.oneFirst(sql.type(z.object({ count: z.number() }))`SELECT count(*)::int AS count FROM dlq_entries`);
    expect(dlqRows).toBe(count("delivery.dead_lettered"));
    expect(total(samples, "webhook_dlq_size")).toBe(dlqRows);
    expect(total(samples, "webhook_circuit_open_endpoints")).toBe(0);
    for (const consumer of ["router", "dispatcher", "replayer"]) {
      expect(samples.get(`webhook_consumer_pending{consumer="${consumer}"}`), consumer).toBe(0);
      expect(samples.get(`webhook_consumer_ack_pending{consumer="${consumer}"}`), consumer).toBe(0);
    }
    // One registry: each metric declared once, the process metrics on, and the ops routes not
    // counted as api requests.
    const declared = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(declared.length).toBe(new Set(declared).size);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(total(samples, "http_request_duration_seconds_count")).toBe(0);
    // The api process counted the ingests; the attempts are the worker's alone.
    const apiSamples = parseMetrics((await get(`${api.url}/metrics`)).text);
    expect(total(apiSamples, "webhook_ingest_requests_total", { outcome: "accepted" })).toBe(EVENTS);
    expect(total(apiSamples, "webhook_delivery_attempts_total")).toBe(0);
  });

  it("answers /health, /ready with the worker roles' dependencies, and /readyz", async () => {
    expect(await get(`${opsUrl}/health`)).toMatchObject({ status: 200, text: JSON.stringify({ status: "ok" }) });
    const ready = await get(`${opsUrl}/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: "ready", checks: { nats: true, postgres: true, consumers: true, readModels: true } });
    const readyz = await get(`${opsUrl}/readyz`);
    expect(JSON.parse(readyz.text)).toEqual({ status: "ready", checks: { migrations: true } });
    expect((await get(`${opsUrl}/v1/webhooks/deliveries`)).status).toBe(404);
  });

  it("says unavailable, 503, when a consumer of its roles is gone", async () => {
    const topology = createTopology(api.config.streamPrefix);
    const { jsm } = api.platform.streams;
    const info = await jsm.consumers.info(topology.stream, topology.consumerName("replayer"));
    await jsm.consumers.delete(topology.stream, topology.consumerName("replayer"));
    try {
      const ready = await get(`${opsUrl}/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text)).toMatchObject({ status: "unavailable", checks: { nats: true, postgres: true, consumers: false } });
    } finally {
      await jsm.consumers.add(topology.stream, info.config);
    }
  });
});

describe("ops server of a dispatcher alone (no database)", () => {
  let zen: TestPlatform;

  beforeAll(async () => {
    zen = await startTestPlatform({ ZEN_ROLES: "dispatcher", ZEN_OPS_PORT: "0" });
  }, 60_000);

  afterAll(async () => {
    await zen?.stop();
  });

  it("serves /metrics with the dispatcher's gauges, and /ready without a postgres check", async () => {
    const opsUrl = zen.platform.opsUrl!;
    expect(opsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(zen.platform.url).toBeUndefined();
    const metrics = await get(`${opsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const samples = parseMetrics(metrics.text);
    expect(samples.get('webhook_consumer_pending{consumer="dispatcher"}')).toBe(0);
    expect(samples.get('webhook_consumer_ack_pending{consumer="dispatcher"}')).toBe(0);
    expect(samples.get("webhook_circuit_open_endpoints")).toBe(0);
    expect(metrics.text).toMatch(/^# TYPE webhook_delivery_attempts_total counter/m);
    // Read-model gauges need a database: not registered here rather than reported as zero.
    expect(metrics.text).not.toContain("webhook_dlq_size");
    expect(metrics.text).not.toContain("webhook_projection_lag_events");
    const ready = await get(`${opsUrl}/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: "ready", checks: { nats: true, consumers: true } });
    expect((await get(`${opsUrl}/readyz`)).status).toBe(404);
    expect(await get(`${opsUrl}/health`)).toMatchObject({ status: 200 });
  });
});
