import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createTracing, type Tracing } from "../services/shared/tracing.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
const FLAKY_POLICY = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100, factor: 2, maxDurationMs: 60_000 };

/**
 * Issue 6: one trace from the ingest request to the delivery attempt, across both JetStream hops
 * (api → router on the message's headers, router → dispatcher on the delivery's), with the receiver
 * seeing the attempt span's `traceparent`. The platform traces into an in-memory exporter handed in
 * through its deps: no global tracer provider, no OTEL_* variables.
 */
describe("tracing: ingest → route → delivery attempt → receiver", () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let receiver: Receiver;
  let zen: TestPlatform;
  let tenant: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    tracing = await createTracing({ enabled: true, serviceName: "zen-test" }, { spanProcessors: [new SimpleSpanProcessor(exporter)] });
    receiver = await startReceiver();
    // Circuits stay closed for the retry scenario's single failure anyway; this keeps it explicit.
    zen = await startTestPlatform({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000" }, { tracing });
    tenant = (await createTenant(zen.url, "Traced", ["ingest", "webhooks:write"])).client;
    for (const [path, eventTypes] of [
      ["/ep/traced", ["traced.*"]],
      ["/ep/flaky", ["flaky.*"]],
    ] as const) {
      const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes, retryPolicy: FLAKY_POLICY });
      expect(endpoint.status).toBe(201);
      receiver.setSecret(path, endpoint.body.secret);
    }
    receiver.behave("/ep/flaky", { status: 500 }, { status: 200 });
  }, 60_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
    await tracing?.shutdown();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it("links the ingest, routing and attempt spans in one trace, and the receiver gets the attempt's traceparent", async () => {
    const response = await tenant("POST", "/v1/webhooks/ingest", { eventType: "traced.created", payload: { n: 1 } });
    expect(response.status).toBe(202);
    const { messageId } = response.body;
    await eventually(() => receiver.on("/ep/traced").some((r) => r.webhookId === messageId), 20_000, "the delivery");
    const got = receiver.on("/ep/traced").find((r) => r.webhookId === messageId)!;
    expect(got.verified).toBe(true);
    expect(got.traceparent).toMatch(TRACEPARENT);

    const ingest = exporter.getFinishedSpans().find((s) => s.name === "POST /v1/webhooks/ingest" && s.attributes["zen.message_id"] === messageId);
    expect(ingest).toBeDefined();
    const traceId = ingest!.spanContext().traceId;
    expect(TRACEPARENT.exec(got.traceparent!)![1]).toBe(traceId);

    // The attempt span ends once its outcome is recorded, just after the receiver answered.
    await eventually(() => named(spansOf(traceId), "webhook.delivery_attempt").length === 1, 10_000, "the attempt span to end");
    const spans = spansOf(traceId);
    expect(spans.map((s) => s.name).sort()).toEqual(["POST /v1/webhooks/ingest", "webhook.delivery_attempt", "webhook.route"]);
    const [route] = named(spans, "webhook.route");
    const [attempt] = named(spans, "webhook.delivery_attempt");
    expect(parentOf(ingest!)).toBeUndefined();
    expect(parentOf(route!)).toBe(ingest!.spanContext().spanId);
    expect(parentOf(attempt!)).toBe(route!.spanContext().spanId);
    // The receiver's traceparent names the attempt span itself.
    expect(got.traceparent).toBe(`00-${traceId}-${attempt!.spanContext().spanId}-01`);
    expect(ingest!.attributes["http.response.status_code"]).toBe(202);
    expect(route!.attributes["zen.message_id"]).toBe(messageId);
    expect(attempt!.attributes["http.response.status_code"]).toBe(200);
    expect(attempt!.attributes["zen.message_id"]).toBe(messageId);
  });

  it("continues the client's traceparent, and keeps a retry in the trace as a child of the failed attempt", async () => {
    const clientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const clientSpanId = "00f067aa0ba902b7";
    const response = await tenant(
      "POST",
      "/v1/webhooks/ingest",
      { eventType: "flaky.created", payload: { n: 2 } },
      { traceparent: `00-${clientTraceId}-${clientSpanId}-01` },
    );
    expect(response.status).toBe(202);
    const { messageId } = response.body;
    await eventually(() => receiver.on("/ep/flaky").filter((r) => r.webhookId === messageId).length === 2, 20_000, "the failed attempt and its retry");
    await eventually(() => named(spansOf(clientTraceId), "webhook.delivery_attempt").length === 2, 10_000, "both attempt spans to end");

    const spans = spansOf(clientTraceId);
    const [ingest] = named(spans, "POST /v1/webhooks/ingest");
    const [route] = named(spans, "webhook.route");
    const attempts = named(spans, "webhook.delivery_attempt").sort((a, b) => Number(a.attributes["zen.attempt"]) - Number(b.attributes["zen.attempt"]));
    expect(parentOf(ingest!)).toBe(clientSpanId);
    expect(parentOf(route!)).toBe(ingest!.spanContext().spanId);
    expect(parentOf(attempts[0]!)).toBe(route!.spanContext().spanId);
    expect(attempts[0]!.attributes["http.response.status_code"]).toBe(500);
    expect(attempts[0]!.status.code).toBe(2); // SpanStatusCode.ERROR
    // The retry was scheduled by the first attempt's events, so it continues from that span.
    expect(parentOf(attempts[1]!)).toBe(attempts[0]!.spanContext().spanId);
    expect(attempts[1]!.attributes["http.response.status_code"]).toBe(200);
    const seen = receiver
      .on("/ep/flaky")
      .filter((r) => r.webhookId === messageId)
      .map((r) => r.traceparent);
    expect(seen).toEqual(attempts.map((a) => `00-${clientTraceId}-${a.spanContext().spanId}-01`));
  });

  it("logs the request, the command, the routing decision and each delivery attempt with tenant, ids, correlation id and trace id", async () => {
    receiver.behave("/ep/flaky", { status: 500 }, { status: 200 });
    const response = await tenant("POST", "/v1/webhooks/ingest", { eventType: "flaky.logged", payload: { n: 3 } });
    expect(response.status).toBe(202);
    const { messageId } = response.body;
    const reqId = response.headers.get("x-request-id");
    expect(reqId).toEqual(expect.any(String));
    await eventually(() => receiver.on("/ep/flaky").filter((r) => r.webhookId === messageId).length === 2, 20_000, "the failed attempt and its retry");
    const ingest = exporter.getFinishedSpans().find((s) => s.name === "POST /v1/webhooks/ingest" && s.attributes["zen.message_id"] === messageId);
    const traceId = ingest!.spanContext().traceId;
    await eventually(() => logLines().filter((l) => l.msg === "delivery attempt" && l.messageId === messageId).length === 2, 10_000, "both attempt lines");

    const lines = logLines();
    const tenantId = ingest!.attributes["zen.tenant_id"];
    expect(tenantId).toMatch(/^ten_/);
    const requestLine = lines.find((l) => l.msg === "request completed" && l.correlationId === reqId);
    expect(requestLine).toMatchObject({ route: "/v1/webhooks/ingest", statusCode: 202, tenantId, correlationId: reqId, traceId });
    const accepted = lines.find((l) => l.msg === "message accepted" && l.messageId === messageId);
    expect(accepted).toMatchObject({ tenantId, correlationId: reqId, traceId });
    // The api's lines name the request id as the correlationId, as the router's and dispatcher's do.
    expect(lines.filter((l) => "reqId" in l)).toEqual([]);
    // One routing line per message at the default level (info), between the api's and the attempts'.
    const routed = lines.filter((l) => l.msg === "routed" && l.messageId === messageId);
    expect(routed).toHaveLength(1);
    expect(routed[0]).toMatchObject({ level: 30, tenantId, targets: 1, correlationId: reqId, traceId });
    // One traceId key per line, not one from the request's logger and another from the line itself.
    expect(
      rawLines()
        .filter((l) => l.includes(messageId) && l.includes('"message accepted"'))[0]!
        .split('"traceId"'),
    ).toHaveLength(2);
    const attemptLines = lines.filter((l) => l.msg === "delivery attempt" && l.messageId === messageId);
    for (const line of attemptLines) {
      expect(line).toMatchObject({ tenantId, correlationId: reqId, traceId, deliveryId: expect.stringMatching(/^dlv_/), endpointId: expect.stringMatching(/^ep_/) });
    }
    expect(attemptLines.map((l) => l.statusCode).sort()).toEqual([200, 500]);
    // A request outside any span (a registry command) logs no traceId, and its command line names its ids.
    const registered = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url("/ep/other"), eventTypes: ["other.*"] });
    expect(registered.status).toBe(201);
    const commandReq = registered.headers.get("x-request-id");
    const command = logLines().find((l) => l.msg === "endpoint command accepted" && l.correlationId === commandReq);
    expect(command).toMatchObject({ tenantId, endpointId: registered.body.id, command: "RegisterEndpoint" });
    const commandRequest = logLines().find((l) => l.msg === "request completed" && l.correlationId === commandReq);
    expect(commandRequest).toMatchObject({ tenantId, correlationId: commandReq, statusCode: 201 });
    expect(commandRequest).not.toHaveProperty("traceId");
  });

  const rawLines = () => zen.logLines.flatMap((chunk) => chunk.split("\n")).filter(Boolean);
  const logLines = () => rawLines().map((l) => JSON.parse(l) as Record<string, unknown>);
});
