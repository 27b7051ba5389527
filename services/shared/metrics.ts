import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** How long one gauge's source may take on a scrape before its last value is served instead. */
const SOURCE_TIMEOUT_MS = 1_000;

/** What an attempt led to, as `webhook_delivery_attempts_total{outcome}` counts it. */
export type AttemptOutcome = "succeeded" | "retry" | "dead";
/** What an ingest request came to, as `webhook_ingest_requests_total{outcome}` counts it. */
export type IngestOutcome = "accepted" | "duplicate" | "rejected" | "error";

/**
 * Where the scrape-time gauges read their values; each is optional, and a gauge is registered only
 * when its source is (the DLQ gauge only in a process with a database, and so on). Sources should
 * be cheap: they run on every scrape.
 */
export interface MetricSources {
  /** Rows in the DLQ read model. */
  dlqSize?: () => Promise<number>;
  /** Endpoints whose circuit is open or half-open, from the registry view. */
  circuitOpenEndpoints?: () => number;
  /** Messages not yet delivered plus delivered but unacked, per durable consumer this process runs. */
  consumerPending?: () => Promise<Array<{ consumer: string; pending: number }>>;
  /** Stream events not yet applied, per projection. */
  projectionLag?: () => Promise<Array<{ projection: string; lag: number }>>;
}

/** `2xx`…`5xx` for an HTTP status, `none` when there was no response (a network error). */
export function statusClass(statusCode: number | null | undefined): string {
  if (statusCode === null || statusCode === undefined || statusCode < 100 || statusCode > 599) return "none";
  return `${Math.floor(statusCode / 100)}xx`;
}

/** The ingest outcome of a response status: 202 accepted, 409 a duplicate `eventId`, 4xx refused, 5xx failed. */
export function ingestOutcome(statusCode: number): IngestOutcome {
  if (statusCode === 202) return "accepted";
  if (statusCode === 409) return "duplicate";
  return statusCode >= 500 ? "error" : "rejected";
}

/** The outcome of a recorded attempt from the events appended with it; undefined when none says. */
export function attemptOutcomeOf(eventTypes: readonly string[]): AttemptOutcome | undefined {
  if (eventTypes.includes("delivery.succeeded")) return "succeeded";
  if (eventTypes.includes("delivery.retry_scheduled")) return "retry";
  if (eventTypes.includes("delivery.dead_lettered")) return "dead";
  return undefined;
}

/** One recorded delivery attempt, as the dispatcher saw it. */
export interface AttemptObservation {
  outcome: AttemptOutcome;
  /** Absent or null: no response (a network error). */
  statusCode: number | null | undefined;
  /** How long the request took. */
  durationMs: number;
  /**
   * When the message was accepted (the `202`); the latency histogram observes succeeded attempts
   * of a first series only (a replay's delivery would count the days it spent in the DLQ).
   */
  messageReceivedAt: string | undefined;
  now: Date;
}

/**
 * The process's Prometheus registry (default process metrics on) and typed handles on every metric.
 * One per process, handed to whoever records: tests run several platforms in one process, so there
 * is no global registry.
 */
export function createMetrics(sources: MetricSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const ingestRequests = new Counter({
    name: "webhook_ingest_requests_total",
    help: "Ingest requests by outcome: accepted, duplicate (eventId seen), rejected (4xx), error (5xx)",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of ["accepted", "duplicate", "rejected", "error"] as const) ingestRequests.inc({ outcome }, 0);

  const signatureFailures = new Counter({
    name: "webhook_signature_failures_total",
    help: "Inbound requests refused because their signature did not verify, by signing scheme",
    labelNames: ["scheme"] as const,
    registers,
  });

  const deliveryAttempts = new Counter({
    name: "webhook_delivery_attempts_total",
    help: "Delivery attempts recorded, by what followed (succeeded, retry, dead) and response status class (none: no response)",
    labelNames: ["outcome", "status_class"] as const,
    registers,
  });

  const attemptDuration = new Histogram({
    name: "webhook_delivery_attempt_duration_seconds",
    help: "Duration of one delivery attempt's HTTP request",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers,
  });

  const deliveryLatency = new Histogram({
    name: "webhook_delivery_latency_seconds",
    help: "From the message's acceptance (the 202) to its delivery's success, retries included",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3_600, 21_600, 86_400],
    registers,
  });

  const retries = new Counter({
    name: "webhook_retries_total",
    help: "Retries scheduled after a failed delivery attempt",
    registers,
  });

  const httpRequestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "API request duration by route pattern, method and status class",
    labelNames: ["route", "method", "status_class"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  registerGauges(registry, sources);

  return {
    registry,
    ingestRequests,
    signatureFailures,
    deliveryAttempts,
    attemptDuration,
    deliveryLatency,
    retries,
    httpRequestDuration,
    /** Counts one inbound request refused by its source's signature check (replays included). */
    signatureRejected(scheme: string): void {
      signatureFailures.inc({ scheme });
    },
    /** Records one delivery attempt in the attempt, duration, retry and latency metrics. */
    attemptRecorded(attempt: AttemptObservation): void {
      deliveryAttempts.inc({ outcome: attempt.outcome, status_class: statusClass(attempt.statusCode) });
      attemptDuration.observe(Math.max(0, attempt.durationMs) / 1_000);
      if (attempt.outcome === "retry") retries.inc();
      if (attempt.outcome === "succeeded") {
        const acceptedAt = attempt.messageReceivedAt === undefined ? NaN : Date.parse(attempt.messageReceivedAt);
        if (Number.isFinite(acceptedAt)) deliveryLatency.observe(Math.max(0, attempt.now.getTime() - acceptedAt) / 1_000);
      }
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The gauges read at scrape time; a source that fails or hangs leaves the gauge's last value. */
function registerGauges(registry: Registry, sources: MetricSources): void {
  const registers = [registry];
  const { dlqSize, circuitOpenEndpoints, consumerPending, projectionLag } = sources;
  if (dlqSize) {
    new Gauge({
      name: "webhook_dlq_size",
      help: "Dead-lettered deliveries in the DLQ read model",
      registers,
      async collect() {
        const size = await tolerant(dlqSize);
        if (size !== undefined) this.set(size);
      },
    });
  }
  if (circuitOpenEndpoints) {
    new Gauge({
      name: "webhook_circuit_open_endpoints",
      help: "Endpoints whose circuit breaker is open or half-open",
      registers,
      async collect() {
        const open = await tolerant(async () => circuitOpenEndpoints());
        if (open !== undefined) this.set(open);
      },
    });
  }
  if (consumerPending) {
    new Gauge({
      name: "webhook_consumer_pending",
      help: "JetStream messages waiting for a durable consumer: not yet delivered plus delivered and unacked",
      labelNames: ["consumer"] as const,
      registers,
      async collect() {
        for (const { consumer, pending } of (await tolerant(consumerPending)) ?? []) this.set({ consumer }, pending);
      },
    });
  }
  if (projectionLag) {
    new Gauge({
      name: "webhook_projection_lag_events",
      help: "Stream events not yet applied by a projection (last stream sequence minus its checkpoint)",
      labelNames: ["projection"] as const,
      registers,
      async collect() {
        for (const { projection, lag } of (await tolerant(projectionLag)) ?? []) this.set({ projection }, lag);
      },
    });
  }
}

/** The source's value, or undefined when it throws or takes longer than {@link SOURCE_TIMEOUT_MS}. */
async function tolerant<T>(source: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), SOURCE_TIMEOUT_MS)));
  try {
    return await Promise.race([source().catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
