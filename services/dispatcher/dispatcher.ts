import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import pLimit, { type LimitFunction } from "p-limit";
import type { Actor } from "../../contracts/common.js";
import { EVENT_HEADERS } from "../../contracts/envelope.js";
import type { EventData } from "../../contracts/events.js";
import type { BreakerConfig } from "../../domain/circuit/breaker.js";
import { parseRetryAfterMs } from "../../domain/delivery/backoff.js";
import { perSecondBucket } from "../../domain/limits/token-bucket.js";
import { endpointIdOf } from "../../domain/routing/fanout.js";
import { classifyAttempt } from "../../domain/delivery/classify.js";
import { deliveryDecider, type DeliveryCommand, type DeliveryState } from "../../domain/delivery/delivery.js";
import { effectiveDeliveryPolicy, effectiveRetryPolicy, signingSecrets } from "../../domain/endpoint/endpoint.js";
import { DomainError } from "../../domain/errors.js";
import { ack, ensureDurable, retryLater, runDurable, toStoredEvent, type RunningConsumer, type Settlement } from "../../streams/consumers.js";
import { ConcurrencyError, type AggregateRef, type EventStore, type LoadedAggregate, type StoredEvent } from "../../streams/event-store.js";
import type { EndpointView, RegistryView } from "../../streams/registry-view.js";
import type { Topology } from "../../streams/topology.js";
import { traceFields, type Logger } from "../shared/logger.js";
import { attemptOutcomeOf, type Metrics } from "../shared/metrics.js";
import { NOOP_TRACING, type TraceSpan, type Tracing } from "../shared/tracing.js";
import type { SecretBox } from "../shared/secret-box.js";
import { createComebacks } from "./comebacks.js";
import { createEndpointHealth, type Cause } from "./endpoint-health.js";
import type { HttpSender, SendResult } from "../outbound/http-sender.js";
import { signedRequest } from "../outbound/signed-request.js";
import { createOutboundLimits, type NamedBucket } from "./outbound-limits.js";
import { createLocalBuckets, type SharedBuckets } from "../shared/shared-buckets.js";

const SYSTEM: Actor = { kind: "system", id: "dispatcher" };
const VIEW_WAIT_MS = 10_000;
/** How long a crashed dispatcher's messages wait before another dispatcher takes them over. */
const ACK_WAIT_MS = 20_000;
/**
 * A retry that is not yet due keeps its unacked slot until the server redelivers it (2.9 has no
 * message scheduling), so the consumer must allow far more unacked messages than are ever retrying.
 */
const MAX_ACK_PENDING = 100_000;
/**
 * A backlog behind an open circuit comes back at most this often per endpoint (200/s), so
 * thousands of deliveries waiting for the same half-open time do not all return at once.
 */
const CIRCUIT_COMEBACK_SPACING_MS = 5;
/** How long a delivery already being attempted in this process is put back for, if it comes again. */
const IN_FLIGHT_RETRY_MS = 5_000;

export interface DispatcherDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: EventStore;
  view: RegistryView;
  topology: Topology;
  logger: Logger;
  sender: HttpSender;
  secretBox: SecretBox;
  /** Attempts in flight in this process, all endpoints together. */
  concurrency: number;
  /** Attempts in flight to any one endpoint, so a slow endpoint cannot take every slot. */
  concurrencyPerEndpoint: number;
  /** Delivery messages handled at once (waiting for a slot or sending). */
  maxHandled?: number;
  /** Circuit-breaker overrides: 5 consecutive transient failures open it for 60 s, then 3 probes. */
  breaker?: Partial<BreakerConfig>;
  /** An endpoint failing without a break for longer than this is disabled (default 5 days). */
  endpointDisableAfterMs?: number;
  /** A span per delivery attempt, continuing the delivery event's trace (off by default). */
  tracing?: Tracing;
  /**
   * The outbound rate-limit buckets, shared by every dispatcher (`createSharedBuckets(nc, topology,
   * "outbound")`); without them this process's own, as if it were the only dispatcher.
   */
  outboundBuckets?: SharedBuckets;
  /** Where recorded attempts are counted (test sends never come here). */
  metrics?: Metrics;
}

type Waiting = Extract<DeliveryState, { status: "pending" | "retrying" }>;

/**
 * The dispatcher: a reactor on delivery events. `delivery.scheduled` and a due
 * `delivery.retry_scheduled` trigger one signed attempt, recorded as `delivery.attempted` plus its
 * outcome. A retry not yet due goes back to the server with `nak(delay)`, so waiting costs no
 * client resources; per-endpoint slots keep a dead endpoint from holding up healthy ones. Each
 * endpoint has a circuit breaker (see `endpoint-health.ts`): while it is open, its deliveries go
 * back to the server until it half-opens, without spending an attempt.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { store, view, topology, logger } = deps;
  const durable = topology.consumerName("dispatcher");
  const sendSlots = pLimit(deps.concurrency);
  const endpointSlots = new Map<string, LimitFunction>();
  let running: RunningConsumer | undefined;
  const limits = createOutboundLimits(deps.outboundBuckets ?? createLocalBuckets());
  const comebacks = createComebacks();
  const inFlight = new Set<number>();
  const tracing = deps.tracing ?? NOOP_TRACING;
  const health = createEndpointHealth({ store, logger, breaker: deps.breaker, disableAfterMs: deps.endpointDisableAfterMs });

  /** Each endpoint's recent attempt latency (an exponential moving average), in ms. */
  const recentLatency = new Map<string, number>();
  /** When each attempt in flight to an endpoint started. */
  const inFlightSince = new Map<string, number[]>();

  /** Sends under the endpoint's and the process's slots, keeping the endpoint's latency figures. */
  async function sendTimed(slots: LimitFunction, endpointId: string, sendIt: () => Promise<SendResult>): Promise<SendResult> {
    return slots(() =>
      sendSlots(async () => {
        const starts = inFlightSince.get(endpointId) ?? [];
        inFlightSince.set(endpointId, starts);
        const startedAt = Date.now();
        starts.push(startedAt);
        try {
          const result = await sendIt();
          recentLatency.set(endpointId, 0.8 * (recentLatency.get(endpointId) ?? result.latencyMs) + 0.2 * result.latencyMs);
          return result;
        } finally {
          starts.splice(starts.indexOf(startedAt), 1);
        }
      }),
    );
  }

  /**
   * A delivery for an endpoint whose slots are all taken comes back no sooner than an attempt there
   * takes — its recent latency (half its timeout before any attempt finished), or the age of its
   * oldest attempt in flight, at least 1 s — and queued behind the endpoint's other comebacks at the
   * pace its slots free up: a hanging endpoint's backlog then trickles back instead of cycling in
   * bursts, and costs the other endpoints nothing.
   */
  const busyEndpointRetry = (endpointId: string, timeoutMs: number): Settlement => {
    const now = Date.now();
    const oldest = inFlightSince.get(endpointId)?.[0];
    const typicalMs = recentLatency.get(endpointId) ?? timeoutMs / 2;
    const expectedMs = Math.max(1_000, typicalMs, oldest === undefined ? 0 : now - oldest);
    return retryLater(comebacks.delayFor(endpointId, expectedMs, expectedMs / deps.concurrencyPerEndpoint, now));
  };

  /** A delivery behind an open circuit comes back once it half-opens, queued behind the endpoint's other comebacks. */
  const circuitRetry = (endpointId: string, openForMs: number): Settlement =>
    retryLater(comebacks.delayFor(endpointId, openForMs, CIRCUIT_COMEBACK_SPACING_MS, Date.now()));

  const slotsFor = (endpointId: string): LimitFunction => {
    let slots = endpointSlots.get(endpointId);
    if (!slots) endpointSlots.set(endpointId, (slots = pLimit(deps.concurrencyPerEndpoint)));
    return slots;
  };

  /**
   * Appends what `command` decides on `loaded`. When the delivery moved on meanwhile (a crashed
   * predecessor's events, or a concurrent dispatcher), it reloads: an attempt left without its
   * outcome is resolved from the recorded attempt, anything else is already in hand.
   */
  async function decideAndAppend(ref: AggregateRef, loaded: LoadedAggregate<DeliveryState>, command: DeliveryCommand, causeId: string, stored: StoredEvent): Promise<string[]> {
    const events = deliveryDecider.decide(command, loaded.state);
    const context = { correlationId: stored.envelope.correlationId, causationId: stored.envelope.id, actor: SYSTEM, now: new Date(), traceparent: stored.traceparent };
    try {
      await store.append(ref, events, { expectedVersion: loaded.version, prevHash: loaded.lastHash, causeId, context });
      return events.map((event) => event.type);
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      const current = await store.load(ref, deliveryDecider, { fresh: true });
      if (current.state.status === "attempted") await resolveRecordedAttempt(ref, current, stored);
      return [];
    }
  }

  /** The outcome of a recorded attempt was never appended (a crash in between): decide it now. */
  async function resolveRecordedAttempt(ref: AggregateRef, loaded: LoadedAggregate<DeliveryState>, stored: StoredEvent): Promise<void> {
    if (loaded.state.status !== "attempted") return;
    const endpoint = view.endpoint(ref.tenantId, loaded.state.scheduled.endpointId);
    const policy = effectiveRetryPolicy(endpoint?.state ?? {});
    const command: DeliveryCommand = { type: "ResolveAttempt", policy, now: new Date().toISOString(), random: Math.random() };
    await decideAndAppend(ref, loaded, command, `${ref.aggregateId}:resolve:${loaded.state.lastAttempt.attempt}`, stored);
  }

  async function attempt(ref: AggregateRef, loaded: LoadedAggregate<DeliveryState>, waiting: Waiting, stored: StoredEvent): Promise<Settlement> {
    const { scheduled } = waiting;
    if (!(await view.waitFor(scheduled.registrySeq, VIEW_WAIT_MS))) return retryLater(1_000);
    const endpoint = view.endpoint(ref.tenantId, scheduled.endpointId);
    if (!endpoint || endpoint.state.status !== "active") {
      const reason = endpoint?.state.status === "disabled" ? `endpoint disabled: ${endpoint.state.disabledReason ?? "no reason"}` : "endpoint deleted";
      await decideAndAppend(ref, loaded, { type: "AbandonDelivery", reason, errorClass: "endpoint_unavailable" }, `${ref.aggregateId}:abandoned:${waiting.series}`, stored);
      return ack;
    }
    const cause: Cause = { stored, deliveryId: ref.aggregateId, attempt: waiting.nextAttempt };
    // An open circuit: wait until it half-opens, spending no attempt and holding nothing meanwhile.
    const admission = await health.admit(endpoint, cause);
    if (!admission.allowed) return waitForCircuit(ref, loaded, waiting, endpoint, admission.retryInMs, stored);
    const slots = slotsFor(endpoint.endpointId);
    // As many may wait as may send: a slow endpoint's backlog goes back to the server, not into memory.
    if (slots.pendingCount >= deps.concurrencyPerEndpoint) {
      health.release(endpoint, admission);
      return busyEndpointRetry(endpoint.endpointId, effectiveDeliveryPolicy(endpoint.state).timeoutMs);
    }
    // Tokens last, so a token is never taken by an attempt that then goes back to the server.
    const deferred = await takeTokens(ref.tenantId, endpoint);
    if (deferred) {
      health.release(endpoint, admission);
      return deferred;
    }
    // One span per attempt made (slot wait, request, record), continuing the delivery event's trace;
    // the receiver gets its traceparent, and the attempt's events carry it to the next retry.
    const span = tracing.startSpan("webhook.delivery_attempt", {
      kind: "client",
      parent: stored.traceparent,
      attributes: tracing.enabled ? { "zen.tenant_id": ref.tenantId, "zen.delivery_id": ref.aggregateId, "zen.endpoint_id": endpoint.endpointId, "zen.message_id": scheduled.messageId, "zen.attempt": waiting.nextAttempt, "http.request.method": "POST" } : undefined,
    });
    let result: SendResult;
    try {
      result = await sendTimed(slots, endpoint.endpointId, () => send(endpoint, scheduled, span.traceparent));
    } catch (error) {
      health.release(endpoint, admission);
      span.fail("the attempt could not be sent");
      span.end();
      throw error;
    }
    const now = new Date();
    const observed = {
      startedAt: result.startedAt.toISOString(),
      latencyMs: result.latencyMs,
      statusCode: result.statusCode,
      networkError: result.networkError,
      error: result.error,
      responseSnippet: result.responseSnippet,
      retryAfterMs: parseRetryAfterMs(result.retryAfter, now),
    };
    const command: DeliveryCommand = { type: "RecordAttempt", attempt: observed, policy: effectiveRetryPolicy(endpoint.state), now: now.toISOString(), random: Math.random() };
    let recorded: string[] = [];
    let recordFailed = false;
    try {
      if (tracing.enabled) traceAttempt(span, result);
      recorded = await decideAndAppend(ref, loaded, command, `${ref.aggregateId}:attempt:${waiting.nextAttempt}`, span.traceparent ? { ...stored, traceparent: span.traceparent } : stored);
    } catch (error) {
      recordFailed = true;
      throw error;
    } finally {
      // The breaker learns of every attempt made, recorded or not; this never throws.
      await health.attempted(endpoint, classifyAttempt(observed), admission, cause);
      span.end();
      // One line per attempt made, recorded or not (a failed record is redelivered and resolved
      // without sending again, so this line is the attempt's only one).
      const line = { tenantId: ref.tenantId, deliveryId: ref.aggregateId, endpointId: endpoint.endpointId, messageId: scheduled.messageId, attempt: waiting.nextAttempt, statusCode: result.statusCode, networkError: result.networkError, latencyMs: result.latencyMs, correlationId: stored.envelope.correlationId, ...traceFields(span) };
      // (The error itself is the consumer's `onError` line.)
      if (recordFailed) logger.warn({ ...line, recorded: false }, "delivery attempt");
      else logger.info(line, "delivery attempt");
    }
    // Counted once recorded: an attempt another dispatcher recorded first is its to count.
    const outcome = attemptOutcomeOf(recorded);
    if (outcome) deps.metrics?.attemptRecorded({ outcome, statusCode: result.statusCode, durationMs: result.latencyMs, messageReceivedAt: waiting.series === 1 ? scheduled.messageReceivedAt : undefined, now });
    return ack;
  }

  /**
   * The endpoint's circuit is open: come back when it half-opens, spending no attempt. A retry whose
   * window (`maxDurationMs` from the first attempt of its series) would end before then is
   * dead-lettered now, as the retry policy would have done; so is a delivery never attempted once
   * its window, counted from the message's acceptance, has passed (a replayed series not yet
   * attempted has no window start and waits).
   */
  async function waitForCircuit(ref: AggregateRef, loaded: LoadedAggregate<DeliveryState>, waiting: Waiting, endpoint: EndpointView, waitMs: number, stored: StoredEvent): Promise<Settlement> {
    const { maxDurationMs } = effectiveRetryPolicy(endpoint.state);
    // A first series never attempted counts its window from the message's acceptance, so a
    // backlog behind a dead endpoint ends in the DLQ instead of holding consumer slots for days.
    const windowStart = waiting.seriesStartedAt ?? (waiting.series === 1 ? waiting.scheduled.messageReceivedAt : undefined);
    if (windowStart === undefined || Date.now() + waitMs - Date.parse(windowStart) <= maxDurationMs) {
      return circuitRetry(endpoint.endpointId, waitMs);
    }
    const reason = `retry window of ${maxDurationMs} ms exhausted while the endpoint's circuit was open`;
    await decideAndAppend(ref, loaded, { type: "AbandonDelivery", reason, errorClass: "endpoint_unavailable" }, `${ref.aggregateId}:circuit-expired:${waiting.nextAttempt}`, stored);
    return ack;
  }

  /**
   * Waits for the endpoint's `rateLimit` and the tenant's outbound bucket; a long wait goes back to
   * the server instead. Either way no attempt is spent.
   */
  async function takeTokens(tenantId: string, endpoint: EndpointView): Promise<Settlement | undefined> {
    const buckets: NamedBucket[] = [];
    const perSecond = endpoint.state.rateLimit?.perSecond;
    if (perSecond) buckets.push({ key: `endpoint.${endpoint.endpointId}`, bucket: perSecondBucket(perSecond) });
    const tenant = view.tenant(tenantId);
    if (tenant?.status === "active" && tenant.limits.outbound) buckets.push({ key: `tenant.${tenantId}`, bucket: tenant.limits.outbound });
    if (buckets.length === 0) return undefined;
    // Waits in process for a short wait; a longer one comes back from the server, jittered.
    const admission = await limits.admit(buckets);
    return "deferMs" in admission ? retryLater(admission.deferMs + Math.random() * 100) : undefined;
  }

  function send(endpoint: EndpointView, scheduled: EventData<"delivery.scheduled">, traceparent: string | undefined) {
    const now = new Date();
    // During a rotation's grace both secrets sign, the new one first (API.md "rotate-secret").
    const secrets = signingSecrets(endpoint.state, now).map((sealed) => deps.secretBox.decrypt(sealed));
    const request = signedRequest({ url: endpoint.state.url, secrets, scheduled, now, traceparent });
    return deps.sender.send({ ...request, timeoutMs: effectiveDeliveryPolicy(endpoint.state).timeoutMs });
  }

  /** Milliseconds until the endpoint's recorded circuit half-opens, when it is open: checked before any read. */
  function circuitOpenFor(tenantId: string, endpointId: string): number {
    const circuit = view.endpoint(tenantId, endpointId)?.state.circuit;
    if (circuit?.state !== "open" || circuit.halfOpenAt === undefined) return 0;
    return Math.max(0, Date.parse(circuit.halfOpenAt) - Date.now());
  }

  async function process(stored: StoredEvent, redelivered: boolean): Promise<Settlement> {
    const ref: AggregateRef = { tenantId: stored.envelope.tenantId, aggregateType: "delivery", aggregateId: stored.envelope.aggregateId };
    if (stored.envelope.type === "delivery.retry_scheduled") {
      const dueInMs = Date.parse((stored.envelope.data as EventData<"delivery.retry_scheduled">).nextAttemptAt) - Date.now();
      if (dueInMs > 0) return retryLater(dueInMs);
    }
    // A backlog behind an open circuit goes back to the server without costing a read each time.
    const endpointId = endpointIdOf(ref.aggregateId);
    const openForMs = circuitOpenFor(ref.tenantId, endpointId);
    if (openForMs > 0) return circuitRetry(endpointId, openForMs);
    // So does a backlog for an endpoint whose every slot is taken.
    if ((endpointSlots.get(endpointId)?.pendingCount ?? 0) >= deps.concurrencyPerEndpoint) {
      const endpoint = view.endpoint(ref.tenantId, endpointId);
      return busyEndpointRetry(endpointId, effectiveDeliveryPolicy(endpoint?.state ?? {}).timeoutMs);
    }
    // A redelivered trigger may have been handled, wholly or partly, by a dispatcher that died:
    // read the delivery to its end before sending anything.
    const loaded = await store.load(ref, deliveryDecider, { knownLast: stored, knownLastIsLatest: !redelivered });
    const { state } = loaded;
    if (state.status === "attempted") {
      await resolveRecordedAttempt(ref, loaded, stored);
      return ack;
    }
    // Only the delivery's latest event triggers an attempt; older ones were superseded.
    if ((state.status !== "pending" && state.status !== "retrying") || loaded.version !== stored.seq) return ack;
    return attempt(ref, loaded, state, stored);
  }

  async function handle(message: JsMsg): Promise<Settlement> {
    const type = message.headers?.get(EVENT_HEADERS.type);
    // A replay's `delivery.replayed` starts a new attempt series, attempted like a first schedule.
    if (type !== "delivery.scheduled" && type !== "delivery.retry_scheduled" && type !== "delivery.replayed") return ack;
    // A redelivery of a message this process is still handling (a handler that outlived the ack
    // wait) must not send the delivery a second time in parallel.
    if (inFlight.has(message.seq)) return retryLater(IN_FLIGHT_RETRY_MS);
    inFlight.add(message.seq);
    try {
      const stored = toStoredEvent(message);
      // Only a tracing dispatcher reads the trace context; its attempt spans continue it.
      if (tracing.enabled) stored.traceparent = message.headers?.get(EVENT_HEADERS.traceparent) || undefined;
      return await process(stored, message.info.redelivered);
    } catch (error) {
      if (error instanceof DomainError && error.code === "conflict") return ack;
      throw error;
    } finally {
      inFlight.delete(message.seq);
    }
  }

  return {
    async start(): Promise<void> {
      await ensureDurable(deps.jsm, topology.stream, { durable, filterSubject: topology.deliveryBranch, ackWaitMs: ACK_WAIT_MS, maxAckPending: MAX_ACK_PENDING });
      running = await runDurable(deps.js, topology.stream, durable, {
        concurrency: deps.maxHandled ?? 4_096,
        ackWaitMs: ACK_WAIT_MS,
        handle,
        onError: (error, message) => logger.error({ err: error, seq: message.seq }, "dispatch failed; the delivery event will be redelivered"),
        onLoopEnd: (error) => logger.warn({ err: error, durable }, "consume loop ended; re-opening it until the consumer answers"),
      });
    },
    /** True while the durable consumer's loop runs (see {@link RunningConsumer.running}). */
    running: (): boolean => running?.running() ?? false,
    async stop(): Promise<void> {
      await running?.stop();
    },
  };
}

/** What the attempt span says about the response: its status, or the network failure (never the body). */
function traceAttempt(span: TraceSpan, result: SendResult): void {
  if (result.statusCode !== undefined) span.setAttributes({ "http.response.status_code": result.statusCode });
  if (result.networkError) span.setAttributes({ "error.type": result.networkError });
  if (result.networkError || result.statusCode === undefined || result.statusCode >= 300) {
    span.fail(result.networkError ?? `HTTP ${result.statusCode}`);
  }
}
