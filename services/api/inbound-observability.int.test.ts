import { randomUUID } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import { createTracing, type Tracing } from "../shared/tracing.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

/**
 * Issue 6 for the inbound route and ingest's outcomes: `webhook_inbound_requests_total` counts every
 * inbound answer (429s before the handler included) and never touches API ingest's counter; an
 * inbound request has a server span whose context its message carries; ingest's outcome says what
 * happened, not just its status; and every api line names the request's `correlationId`.
 */
let h: ApiHarness;
let metrics: Metrics;
let tracing: Tracing;
const exporter = new InMemorySpanExporter();
let t: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  metrics = createMetrics();
  tracing = await createTracing({ enabled: true, serviceName: "zen-test" }, { spanProcessors: [new SimpleSpanProcessor(exporter)] });
  h = await startApiHarness({ metrics, tracing });
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write", "ingest"]);
});
afterAll(async () => {
  await h?.stop();
  await tracing?.shutdown();
});

const value = async (counter: "inboundRequests" | "signatureFailures" | "ingestRequests", labels: Record<string, string>) =>
  (await metrics[counter].get()).values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
const logLines = () =>
  h.logLines
    .flatMap((chunk) => chunk.split("\n"))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function githubSource(tenant = t) {
  const res = await h.call({ method: "POST", url: "/v1/webhooks/sources", token: tenant.key, tenantId: tenant.tenantId, body: { name: "gh", scheme: "github" } });
  expect(res.statusCode).toBe(201);
  return { ...(res.json() as { id: string; secret: string; inboundPath: string }), seq: Number(res.headers["x-zen-seq"]) };
}
async function signed(secret: string, deliveryId = randomUUID()) {
  const body = JSON.stringify({ ref: "refs/heads/main", delivery: deliveryId });
  return {
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": deliveryId, "x-hub-signature-256": await githubSign(secret, body) },
  };
}
const post = (url: string, body: string, headers: Record<string, string>) => h.app.inject({ method: "POST", url, payload: body, headers });

describe("webhook_inbound_requests_total", () => {
  it("counts accepted, refused and not-found inbound requests by scheme, and never counts them as API ingest", async () => {
    const source = await githubSource();
    const ingestBefore = await value("ingestRequests", {});
    const before = {
      accepted: await value("inboundRequests", { scheme: "github", outcome: "accepted" }),
      refused: await value("inboundRequests", { scheme: "github", outcome: "refused" }),
      notFound: await value("inboundRequests", { scheme: "none", outcome: "not_found" }),
      mismatch: await value("signatureFailures", { scheme: "github", reason: "signature_mismatch" }),
      replayed: await value("signatureFailures", { scheme: "github", reason: "replayed" }),
    };
    const good = await signed(source.secret);
    expect((await post(source.inboundPath, good.body, good.headers)).statusCode).toBe(202);
    expect((await post(source.inboundPath, good.body, good.headers)).statusCode).toBe(401); // the same delivery again
    const forged = await signed("not-the-secret");
    expect((await post(source.inboundPath, forged.body, forged.headers)).statusCode).toBe(401);
    const unknown = `/v1/inbound/${t.tenantId}/src_${"0".repeat(26)}`;
    expect((await post(unknown, good.body, good.headers)).statusCode).toBe(404);

    expect(await value("inboundRequests", { scheme: "github", outcome: "accepted" })).toBe(before.accepted + 1);
    expect(await value("inboundRequests", { scheme: "github", outcome: "refused" })).toBe(before.refused + 2);
    expect(await value("inboundRequests", { scheme: "none", outcome: "not_found" })).toBe(before.notFound + 1);
    expect(await value("signatureFailures", { scheme: "github", reason: "signature_mismatch" })).toBe(before.mismatch + 1);
    expect(await value("signatureFailures", { scheme: "github", reason: "replayed" })).toBe(before.replayed + 1);
    expect(await value("ingestRequests", {})).toBe(ingestBefore);
  });

  it("counts requests the ingress limit refuses before the handler as rate_limited, with the source's scheme", async () => {
    const limited = await createTenantWithKey(h, ["webhooks:write", "ingest"], "Limited");
    expect((await h.call({ method: "PUT", url: `/v1/tenants/${limited.tenantId}/limits`, body: { ingress: { capacity: 2, refillPerSecond: 0.001 } } })).statusCode).toBe(
      200,
    );
    const source = await githubSource(limited);
    await h.deps.view.waitFor(source.seq, 5_000);
    const before = await value("inboundRequests", { scheme: "github", outcome: "rate_limited" });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const request = await signed(source.secret);
      statuses.push((await post(source.inboundPath, request.body, request.headers)).statusCode);
    }
    expect(statuses).toEqual([202, 202, 429, 429]);
    expect(await value("inboundRequests", { scheme: "github", outcome: "rate_limited" })).toBe(before + 2);
  });
});

describe("inbound tracing", () => {
  it("gives an inbound request a server span, continuing the provider's traceparent, whose context its message carries", async () => {
    const source = await githubSource();
    const clientTraceId = "0af7651916cd43dd8448eb211c80319c";
    const clientSpanId = "b7ad6b7169203331";
    const request = await signed(source.secret);
    const res = await post(source.inboundPath, request.body, { ...request.headers, traceparent: `00-${clientTraceId}-${clientSpanId}-01` });
    expect(res.statusCode).toBe(202);
    const { messageId } = res.json() as { messageId: string };

    const span = exporter.getFinishedSpans().find((s) => s.name === "POST /v1/inbound/:tenantId/:sourceId" && s.attributes["zen.message_id"] === messageId);
    expect(span).toBeDefined();
    expect(span!.spanContext().traceId).toBe(clientTraceId);
    expect(span!.parentSpanContext?.spanId).toBe(clientSpanId);
    expect(span!.attributes).toMatchObject({ "zen.tenant_id": t.tenantId, "zen.source_id": source.id, "zen.scheme": "github", "http.response.status_code": 202 });

    // The message event carries the span's context: the router's span continues this trace.
    const stored = await h.streams.jsm.streams.getMessage(h.streams.topology.stream, { seq: Number(res.headers["x-zen-seq"]) });
    expect(stored!.header.get("traceparent")).toBe(`00-${clientTraceId}-${span!.spanContext().spanId}-01`);

    const accepted = logLines().find((l) => l.msg === "inbound message accepted" && l.messageId === messageId);
    expect(accepted).toMatchObject({ traceId: clientTraceId, correlationId: res.headers["x-request-id"] });
  });

  it("keeps a refused request's span, and its signature.rejected event, in the provider's trace", async () => {
    const source = await githubSource();
    const forged = await signed("not-the-secret");
    const res = await post(source.inboundPath, forged.body, forged.headers);
    expect(res.statusCode).toBe(401);
    const span = exporter.getFinishedSpans().find((s) => s.name === "POST /v1/inbound/:tenantId/:sourceId" && s.attributes["zen.source_id"] === source.id);
    expect(span?.attributes["http.response.status_code"]).toBe(401);
    const info = await h.streams.jsm.streams.info(h.streams.topology.stream);
    const last = await h.streams.jsm.streams.getMessage(h.streams.topology.stream, { seq: info.state.last_seq });
    expect(last!.json<{ type: string; aggregateId: string }>()).toMatchObject({ type: "signature.rejected", aggregateId: source.id });
    expect(last!.header.get("traceparent")).toBe(`00-${span!.spanContext().traceId}-${span!.spanContext().spanId}-01`);
  });
});

describe("webhook_ingest_requests_total outcomes", () => {
  const ingest = (body: unknown, key: string) =>
    h.call({ method: "POST", url: "/v1/webhooks/ingest", token: t.key, tenantId: t.tenantId, body, headers: { "idempotency-key": key } });
  const outcomes = async () =>
    Object.fromEntries(
      await Promise.all(["accepted", "duplicate", "replayed", "rejected", "error"].map(async (o) => [o, await value("ingestRequests", { outcome: o })])),
    );

  it("counts an Idempotency-Key replay as replayed, an Idempotency-Key conflict as rejected, and a stored eventId as duplicate", async () => {
    const before = await outcomes();
    const key = randomUUID();
    const body = { eventType: "order.paid", payload: { n: 1 }, eventId: `evt-${randomUUID()}` };
    const first = await ingest(body, key);
    expect(first.statusCode).toBe(202);
    const replay = await ingest(body, key);
    expect(replay.statusCode).toBe(202);
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    const conflict = await ingest({ ...body, payload: { n: 2 } }, key);
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error.code).toBe("idempotency_conflict");
    const duplicate = await ingest(body, randomUUID());
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error.code).toBe("duplicate_event");

    const after = await outcomes();
    expect(after).toEqual({ ...before, accepted: before.accepted + 1, replayed: before.replayed + 1, rejected: before.rejected + 1, duplicate: before.duplicate + 1 });
  });

  it("names the request's correlationId on every line it logs, and no reqId", async () => {
    const res = await ingest({ eventType: "order.logged", payload: {} }, randomUUID());
    expect(res.statusCode).toBe(202);
    const correlationId = res.headers["x-request-id"];
    const lines = logLines().filter((l) => l.correlationId === correlationId);
    expect(lines.map((l) => l.msg).sort()).toEqual(["message accepted", "request completed"]);
    expect(logLines().filter((l) => "reqId" in l)).toEqual([]);
    // One correlationId key per line, not one from the request's logger and another from the line.
    for (const raw of h.logLines.flatMap((c) => c.split("\n")).filter((l) => l.includes(String(correlationId)))) expect(raw.split('"correlationId"')).toHaveLength(2);
  });
});
