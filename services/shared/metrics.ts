import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ParkReason } from "../../contracts/events.js";
import { SignatureRejectionReason, SourceScheme } from "../../contracts/inbound.js";

/** How long one gauge's source may take on a scrape before its last value is served instead. */
const SOURCE_TIMEOUT_MS = 1_000;

/*
 * Every label of every metric takes its values from a closed set below (or a route pattern): the
 * dashboard and alert checks (test/observability-infra.unit.test.ts) hold their queries to them.
 */

/** What an attempt led to, as `webhook_delivery_attempts_total{outcome}` counts it. */
export const ATTEMPT_OUTCOMES = ["succeeded", "retry", "dead"] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];
/**
 * What an ingest request came to, as `webhook_ingest_requests_total{outcome}` counts it: accepted
 * (a 202 stored now), duplicate (its `eventId` was seen), replayed (an `Idempotency-Key` retry
 * answered with the kept response, whatever it was), rejected (any other 4xx, an Idempotency-Key
 * conflict or a key in use included), error (5xx).
 */
export const INGEST_OUTCOMES = ["accepted", "duplicate", "replayed", "rejected", "error"] as const;
export type IngestOutcome = (typeof INGEST_OUTCOMES)[number];
/**
 * What an inbound request (`POST /v1/inbound/...`) came to, as `webhook_inbound_requests_total{outcome}`
 * counts it: accepted (2xx: stored, or Slack's handshake answered), refused (any other 4xx: a
 * signature that did not verify, a replay, a body too large), rate_limited (429, before
 * verification), not_found (no such live source), error (5xx).
 */
export const INBOUND_OUTCOMES = ["accepted", "refused", "rate_limited", "not_found", "error"] as const;
export type InboundOutcome = (typeof INBOUND_OUTCOMES)[number];
/** The signing schemes (`scheme` label) of the inbound metrics. */
export const SIGNATURE_SCHEMES = SourceScheme.options;
/** The `scheme` of an inbound request whose source is unknown (a 404, a rate-limited unknown path). */
export const NO_SCHEME = "none";
/** Why a signature check refused a request (`reason` label of `webhook_signature_failures_total`). */
export const SIGNATURE_REASONS = SignatureRejectionReason.options;
/** The roles whose durable consumers the `consumer` label of the consumer gauges names. */
export const CONSUMER_ROLES = ["router", "dispatcher", "replayer"] as const;
/** `status_class` values: {@link statusClass}. */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"] as const;

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
  /** Per durable consumer this process runs: its backlog and its delivered but unacked messages. */
  consumerPending?: () => Promise<ConsumerPending[]>;
  /** Stream events not yet applied, per projection. */
  projectionLag?: () => Promise<Array<{ projection: string; lag: number }>>;
}

/** A durable consumer's position, as JetStream's consumer info reports it. */
export interface ConsumerPending {
  consumer: string;
  /** `num_pending`: stream messages not yet delivered to the consumer, its real backlog. */
  pending: number;
  /**
   * `num_ack_pending`: delivered and not yet acked: work in flight, and (on nats-server 2.9, which
   * has no message scheduling) retries held back by `nak(delay)` until their time.
   */
  ackPending: number;
}

/** `2xx`…`5xx` for an HTTP status, `none` when there was no response (a network error). */
export function statusClass(statusCode: number | null | undefined): string {
  if (statusCode === null || statusCode === undefined || statusCode < 100 || statusCode > 599) return "none";
  return `${Math.floor(statusCode / 100)}xx`;
}

/**
 * The outcome of an ingest request from what happened, not from its status alone: an
 * Idempotency-Key replay is `replayed` whatever status it repeats (a kept 202 is not a second
 * acceptance), and a 409 is `duplicate` only when the handler found the `eventId` stored (an
 * Idempotency-Key conflict or key in use is `rejected`).
 */
export function ingestOutcome(statusCode: number, what: { replayed?: boolean; duplicateEvent?: boolean } = {}): IngestOutcome {
  if (what.replayed) return "replayed";
  if (statusCode >= 500) return "error";
  if (what.duplicateEvent && statusCode === 409) return "duplicate";
  return statusCode === 202 ? "accepted" : "rejected";
}

/** The outcome of an inbound request from its response status ({@link INBOUND_OUTCOMES}). */
export function inboundOutcome(statusCode: number): InboundOutcome {
  if (statusCode >= 500) return "error";
  if (statusCode === 429) return "rate_limited";
  if (statusCode === 404) return "not_found";
  return statusCode >= 200 && statusCode < 300 ? "accepted" : "refused";
}

/** A `scheme` label value: one of the signing schemes, else {@link NO_SCHEME}. */
export function schemeLabel(scheme: string | undefined): string {
  return scheme !== undefined && (SIGNATURE_SCHEMES as readonly string[]).includes(scheme) ? scheme : NO_SCHEME;
}

/** The outcome of a recorded attempt from the event that recorded it; undefined when none says. */
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
/** The quotas whose refusals are counted (`webhook_quota_refusals_total{quota}`). */
export const QUOTAS = [
  "endpoints",
  "sources",
  "live_feeds",
  "test_sends",
  "replays_in_flight",
  "payload_bytes_per_second",
  "payload_bytes_per_day",
  "attempts_in_flight",
] as const;
export type Quota = (typeof QUOTAS)[number];

export function createMetrics(sources: MetricSources = {}, { sourceTimeoutMs = SOURCE_TIMEOUT_MS }: { sourceTimeoutMs?: number } = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const ingestRequests = new Counter({
    name: "webhook_ingest_requests_total",
    help: "Ingest requests by outcome: accepted, duplicate (eventId seen), replayed (Idempotency-Key retry), rejected (4xx), error (5xx)",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of INGEST_OUTCOMES) ingestRequests.inc({ outcome }, 0);

  const inboundRequests = new Counter({
    name: "webhook_inbound_requests_total",
    help: "Inbound (provider webhook) requests by signing scheme (none: unknown source) and outcome: accepted, refused, rate_limited, not_found, error",
    labelNames: ["scheme", "outcome"] as const,
    registers,
  });
  for (const scheme of SIGNATURE_SCHEMES) for (const outcome of INBOUND_OUTCOMES) inboundRequests.inc({ scheme, outcome }, 0);

  const signatureFailures = new Counter({
    name: "webhook_signature_failures_total",
    help: "Inbound requests refused by their source's signature check, by signing scheme and reason (replayed: a verified delivery id seen before)",
    labelNames: ["scheme", "reason"] as const,
    registers,
  });
  // Every series exists from the start, so a rate over the first failure is not lost.
  for (const scheme of SIGNATURE_SCHEMES) for (const reason of SIGNATURE_REASONS) signatureFailures.inc({ scheme, reason }, 0);

  const quotaRefusals = new Counter({
    name: "webhook_quota_refusals_total",
    help: "Requests refused by a tenant or process quota: endpoints, sources (422 quota_exceeded), live_feeds, test_sends, replays_in_flight, payload_bytes_per_second, payload_bytes_per_day (429); attempts_in_flight: a delivery attempt that waits for its tenant's share of a dispatcher",
    labelNames: ["quota"] as const,
    registers,
  });
  for (const quota of QUOTAS) quotaRefusals.inc({ quota }, 0);

  const parkedMessages = new Counter({
    name: "webhook_parked_messages_total",
    help: "Stream messages a reactor gave up on and parked, by reactor (router, dispatcher, replayer) and reason (handler_failed, handler_timeout, never_finished)",
    labelNames: ["reactor", "reason"] as const,
    registers,
  });
  for (const reactor of CONSUMER_ROLES) for (const reason of ParkReason.options) parkedMessages.inc({ reactor, reason }, 0);

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

  const deliveryDeferrals = new Counter({
    name: "webhook_delivery_deferrals_total",
    help: "Delivery events put back to the server without an attempt, by reason (not_due: a retry's time has not come; circuit_open; endpoint_busy: slow or hanging; tenant_busy: its tenant holds its share of the process's window; rate_limited)",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const reason of DEFERRAL_REASONS) deliveryDeferrals.inc({ reason }, 0);

  const httpRequestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "API request duration by route pattern, method and status class",
    labelNames: ["route", "method", "status_class"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  registerGauges(registry, sources, sourceTimeoutMs);

  return {
    registry,
    ingestRequests,
    inboundRequests,
    signatureFailures,
    quotaRefusals,
    parkedMessages,
    deliveryAttempts,
    attemptDuration,
    deliveryLatency,
    retries,
    deliveryDeferrals,
    httpRequestDuration,
    /**
     * Counts one inbound request refused by its source's signature check, replays included (as
     * `reason="replayed"`: the alert leaves them out, since a provider's redelivery is one).
     */
    signatureRejected(scheme: string, reason: SignatureRejectionReason): void {
      signatureFailures.inc({ scheme: schemeLabel(scheme), reason });
    },
    /** Counts one request refused by a quota. */
    quotaRefused(quota: Quota): void {
      quotaRefusals.inc({ quota });
    },
    /** Counts one answered inbound request. */
    inboundAnswered(scheme: string | undefined, statusCode: number): void {
      inboundRequests.inc({ scheme: schemeLabel(scheme), outcome: inboundOutcome(statusCode) });
    },
    /** Counts one delivery event put back to the server without an attempt. */
    deliveryDeferred(reason: DeferralReason): void {
      deliveryDeferrals.inc({ reason });
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

/** Why the dispatcher put a delivery event back without an attempt. */
export const DEFERRAL_REASONS = ["not_due", "circuit_open", "endpoint_busy", "tenant_busy", "rate_limited"] as const;
export type DeferralReason = (typeof DEFERRAL_REASONS)[number];

/**
 * The gauges read at scrape time. Each source is read through a {@link sampler}: overlapping scrapes
 * share one read, and a read that fails or outlasts `timeoutMs` leaves the gauge's last value.
 */
function registerGauges(registry: Registry, sources: MetricSources, timeoutMs: number): void {
  const registers = [registry];
  const { dlqSize, circuitOpenEndpoints, consumerPending, projectionLag } = sources;
  if (dlqSize) {
    const read = sampler(dlqSize, timeoutMs);
    new Gauge({
      name: "webhook_dlq_size",
      help: "Dead-lettered deliveries in the DLQ read model",
      registers,
      async collect() {
        const size = await read();
        if (size !== undefined) this.set(size);
      },
    });
  }
  if (circuitOpenEndpoints) {
    const read = sampler(async () => circuitOpenEndpoints(), timeoutMs);
    new Gauge({
      name: "webhook_circuit_open_endpoints",
      help: "Endpoints whose circuit breaker is open or half-open",
      registers,
      async collect() {
        const open = await read();
        if (open !== undefined) this.set(open);
      },
    });
  }
  if (consumerPending) {
    // One consumer-info round trip per consumer and scrape feeds both gauges.
    const read = sampler(consumerPending, timeoutMs);
    new Gauge({
      name: "webhook_consumer_pending",
      help: "JetStream messages not yet delivered to a durable consumer (num_pending): its backlog",
      labelNames: ["consumer"] as const,
      registers,
      async collect() {
        for (const { consumer, pending } of (await read()) ?? []) this.set({ consumer }, pending);
      },
    });
    new Gauge({
      name: "webhook_consumer_ack_pending",
      help: "Messages delivered to a durable consumer and not yet acked (num_ack_pending): in flight, plus retries waiting for their time",
      labelNames: ["consumer"] as const,
      registers,
      async collect() {
        for (const { consumer, ackPending } of (await read()) ?? []) this.set({ consumer }, ackPending);
      },
    });
  }
  if (projectionLag) {
    const read = sampler(projectionLag, timeoutMs);
    new Gauge({
      name: "webhook_projection_lag_events",
      help: "Stream events not yet applied by a projection (last stream sequence minus its checkpoint)",
      labelNames: ["projection"] as const,
      registers,
      async collect() {
        for (const { projection, lag } of (await read()) ?? []) this.set({ projection }, lag);
      },
    });
  }
}

/**
 * A source read at most once at a time: a call while a read is under way joins it instead of
 * starting another, so slow Postgres or NATS answers cannot pile up behind overlapping scrapes.
 * A call waits at most `timeoutMs`, then gets the last value read (undefined before the first);
 * the read goes on and its value serves the next call. A failed read keeps the last value.
 */
export function sampler<T>(source: () => Promise<T>, timeoutMs: number): () => Promise<T | undefined> {
  let last: T | undefined;
  let inFlight: Promise<T | undefined> | undefined;
  return async () => {
    inFlight ??= Promise.resolve()
      .then(source)
      .then(
        (value) => (last = value),
        () => last,
      )
      .finally(() => (inFlight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      return (await Promise.race([inFlight, timeout])) ?? last;
    } finally {
      clearTimeout(timer);
    }
  };
}
