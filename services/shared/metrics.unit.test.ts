import { describe, expect, it } from "vitest";
import { attemptOutcomeOf, createMetrics, inboundOutcome, ingestOutcome, sampler, SIGNATURE_REASONS, SIGNATURE_SCHEMES, statusClass } from "./metrics.js";

/** The value of one sample line of the text format, e.g. `webhook_retries_total 2`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics helpers", () => {
  it("classes statuses as 2xx…5xx, and no response as none", () => {
    expect(statusClass(200)).toBe("2xx");
    expect(statusClass(302)).toBe("3xx");
    expect(statusClass(429)).toBe("4xx");
    expect(statusClass(503)).toBe("5xx");
    expect(statusClass(null)).toBe("none");
    expect(statusClass(undefined)).toBe("none");
    expect(statusClass(0)).toBe("none");
  });

  it("maps ingest answers to outcomes from what happened, not the status alone", () => {
    expect(ingestOutcome(202)).toBe("accepted");
    expect(ingestOutcome(409, { duplicateEvent: true })).toBe("duplicate");
    // An Idempotency-Key replay of a kept 202 (or of a kept duplicate) is no new acceptance.
    expect(ingestOutcome(202, { replayed: true })).toBe("replayed");
    expect(ingestOutcome(409, { replayed: true, duplicateEvent: false })).toBe("replayed");
    // idempotency_conflict and idempotency_key_in_use are 409s that are no duplicate eventId.
    expect(ingestOutcome(409)).toBe("rejected");
    expect(ingestOutcome(400)).toBe("rejected");
    expect(ingestOutcome(401)).toBe("rejected");
    expect(ingestOutcome(413)).toBe("rejected");
    expect(ingestOutcome(500)).toBe("error");
    expect(ingestOutcome(503)).toBe("error");
  });

  it("maps inbound answers to a closed set of outcomes", () => {
    expect([200, 202].map(inboundOutcome)).toEqual(["accepted", "accepted"]);
    expect([400, 401, 413, 415].map(inboundOutcome)).toEqual(["refused", "refused", "refused", "refused"]);
    expect(inboundOutcome(404)).toBe("not_found");
    expect(inboundOutcome(429)).toBe("rate_limited");
    expect([500, 503].map(inboundOutcome)).toEqual(["error", "error"]);
  });

  it("reads an attempt's outcome from the event that recorded it", () => {
    expect(attemptOutcomeOf(["delivery.succeeded"])).toBe("succeeded");
    expect(attemptOutcomeOf(["delivery.retry_scheduled"])).toBe("retry");
    expect(attemptOutcomeOf(["delivery.dead_lettered"])).toBe("dead");
    expect(attemptOutcomeOf([])).toBeUndefined();
  });
});

describe("createMetrics", () => {
  it("keeps one registry per call, with default process metrics", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.retries.inc();
    expect(sample(await a.registry.metrics(), "webhook_retries_total")).toBe(1);
    expect(sample(await b.registry.metrics(), "webhook_retries_total")).toBe(0);
    expect(await a.registry.metrics()).toContain("process_cpu_user_seconds_total");
  });

  it("starts every ingest outcome at zero", async () => {
    const text = await createMetrics().registry.metrics();
    for (const outcome of ["accepted", "duplicate", "replayed", "rejected", "error"]) {
      expect(sample(text, `webhook_ingest_requests_total{outcome="${outcome}"}`)).toBe(0);
    }
  });

  it("starts the signature failures of every scheme and reason, and the inbound requests of every scheme, at zero", async () => {
    const text = await createMetrics().registry.metrics();
    expect(SIGNATURE_SCHEMES).toHaveLength(6);
    for (const scheme of SIGNATURE_SCHEMES) {
      for (const reason of SIGNATURE_REASONS)
        expect(sample(text, `webhook_signature_failures_total{scheme="${scheme}",reason="${reason}"}`), `${scheme} ${reason}`).toBe(0);
      for (const outcome of ["accepted", "refused", "rate_limited", "not_found", "error"]) {
        expect(sample(text, `webhook_inbound_requests_total{scheme="${scheme}",outcome="${outcome}"}`), `${scheme} ${outcome}`).toBe(0);
      }
    }
  });

  it("counts inbound answers and signature failures with bounded labels", async () => {
    const metrics = createMetrics();
    metrics.inboundAnswered("github", 202);
    metrics.inboundAnswered(undefined, 404);
    metrics.inboundAnswered("not-a-scheme", 429);
    metrics.signatureRejected("stripe", "signature_mismatch");
    metrics.signatureRejected("stripe", "replayed");
    const text = await metrics.registry.metrics();
    expect(sample(text, 'webhook_inbound_requests_total{scheme="github",outcome="accepted"}')).toBe(1);
    expect(sample(text, 'webhook_inbound_requests_total{scheme="none",outcome="not_found"}')).toBe(1);
    expect(sample(text, 'webhook_inbound_requests_total{scheme="none",outcome="rate_limited"}')).toBe(1);
    expect(text).not.toContain("not-a-scheme");
    expect(sample(text, 'webhook_signature_failures_total{scheme="stripe",reason="signature_mismatch"}')).toBe(1);
    expect(sample(text, 'webhook_signature_failures_total{scheme="stripe",reason="replayed"}')).toBe(1);
  });

  it("records an attempt: counter by outcome and status class, duration, retries, latency on success", async () => {
    const metrics = createMetrics();
    const now = new Date("2026-01-01T00:00:10.000Z");
    const messageReceivedAt = "2026-01-01T00:00:00.000Z";
    metrics.attemptRecorded({ outcome: "retry", statusCode: null, durationMs: 40, messageReceivedAt, now });
    metrics.attemptRecorded({ outcome: "dead", statusCode: 400, durationMs: 20, messageReceivedAt, now });
    metrics.attemptRecorded({ outcome: "succeeded", statusCode: 204, durationMs: 30, messageReceivedAt, now });
    const text = await metrics.registry.metrics();
    expect(sample(text, 'webhook_delivery_attempts_total{outcome="retry",status_class="none"}')).toBe(1);
    expect(sample(text, 'webhook_delivery_attempts_total{outcome="dead",status_class="4xx"}')).toBe(1);
    expect(sample(text, 'webhook_delivery_attempts_total{outcome="succeeded",status_class="2xx"}')).toBe(1);
    expect(sample(text, "webhook_retries_total")).toBe(1);
    expect(sample(text, "webhook_delivery_attempt_duration_seconds_count")).toBe(3);
    expect(sample(text, "webhook_delivery_attempt_duration_seconds_sum")).toBeCloseTo(0.09);
    expect(sample(text, "webhook_delivery_latency_seconds_count")).toBe(1);
    expect(sample(text, "webhook_delivery_latency_seconds_sum")).toBe(10);
  });

  it("registers the scrape-time gauges only with a source, and reads them on each scrape", async () => {
    expect(await createMetrics().registry.metrics()).not.toContain("webhook_dlq_size");
    let dlq = 3;
    const metrics = createMetrics({
      dlqSize: async () => dlq,
      circuitOpenEndpoints: () => 2,
      consumerPending: async () => [{ consumer: "dispatcher", pending: 7, ackPending: 40 }],
      projectionLag: async () => [{ projection: "read_models", lag: 11 }],
    });
    let text = await metrics.registry.metrics();
    expect(sample(text, "webhook_dlq_size")).toBe(3);
    expect(sample(text, "webhook_circuit_open_endpoints")).toBe(2);
    expect(sample(text, 'webhook_consumer_pending{consumer="dispatcher"}')).toBe(7);
    expect(sample(text, 'webhook_consumer_ack_pending{consumer="dispatcher"}')).toBe(40);
    expect(sample(text, 'webhook_projection_lag_events{projection="read_models"}')).toBe(11);
    dlq = 5;
    text = await metrics.registry.metrics();
    expect(sample(text, "webhook_dlq_size")).toBe(5);
  });

  it("never fails a scrape on a failing or hanging source: the last value stays", async () => {
    let fail = false;
    const metrics = createMetrics({
      dlqSize: async () => {
        if (fail) throw new Error("postgres down");
        return 4;
      },
      consumerPending: () => new Promise(() => {}),
    });
    expect(sample(await metrics.registry.metrics(), "webhook_dlq_size")).toBe(4);
    fail = true;
    const started = Date.now();
    const text = await metrics.registry.metrics();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(sample(text, "webhook_dlq_size")).toBe(4);
    expect(text).toContain("# TYPE webhook_consumer_pending gauge");
  });

  it("reads each source once at a time: overlapping scrapes share one read, and a slow one is not waited for", async () => {
    let reads = 0;
    let answer: ((size: number) => void) | undefined;
    const metrics = createMetrics(
      {
        dlqSize: () => {
          reads++;
          return new Promise<number>((resolve) => (answer = resolve));
        },
        consumerPending: async () => {
          reads += 100;
          return [{ consumer: "router", pending: 1, ackPending: 2 }];
        },
      },
      { sourceTimeoutMs: 50 },
    );
    // Five overlapping scrapes while Postgres hangs: one DLQ read, and one consumer read for both
    // consumer gauges of a scrape (they share it).
    const scrapes = await Promise.all(Array.from({ length: 5 }, () => metrics.registry.metrics()));
    expect(reads % 100).toBe(1);
    expect(Math.floor(reads / 100)).toBeLessThanOrEqual(5);
    // Nothing read yet: prom-client's initial 0.
    for (const text of scrapes) expect(sample(text, "webhook_dlq_size")).toBe(0);
    // Still hanging: a later scrape joins the same read, within the timeout.
    const started = Date.now();
    await metrics.registry.metrics();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(reads % 100).toBe(1);
    // The read answers: its value serves the next scrape, which starts a new read.
    answer!(9);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sample(await metrics.registry.metrics(), "webhook_dlq_size")).toBe(9);
    expect(reads % 100).toBe(2);
  });

  it("gives each scrape of two overlapping gauges one consumer-info read", async () => {
    let reads = 0;
    const metrics = createMetrics({
      consumerPending: async () => {
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return [{ consumer: "dispatcher", pending: 3, ackPending: 5 }];
      },
    });
    const text = await metrics.registry.metrics();
    expect(reads).toBe(1);
    expect(sample(text, 'webhook_consumer_pending{consumer="dispatcher"}')).toBe(3);
    expect(sample(text, 'webhook_consumer_ack_pending{consumer="dispatcher"}')).toBe(5);
  });
});

describe("sampler", () => {
  it("keeps the last value when a read fails, and reads again on the next call", async () => {
    let value: number | Error = 1;
    let reads = 0;
    const read = sampler(async () => {
      reads++;
      if (value instanceof Error) throw value;
      return value;
    }, 50);
    expect(await read()).toBe(1);
    value = new Error("nats down");
    expect(await read()).toBe(1);
    value = 2;
    expect(await read()).toBe(2);
    expect(reads).toBe(3);
  });

  it("answers undefined before any read succeeded, and a synchronous throw counts as a failed read", async () => {
    const read = sampler((): Promise<number> => {
      throw new Error("sync");
    }, 50);
    expect(await read()).toBeUndefined();
  });
});
