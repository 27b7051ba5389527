import pLimit from "p-limit";
import type { Actor } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { admitDelivery } from "../../domain/delivery/admission.js";
import { parseRetryAfterMs } from "../../domain/delivery/backoff.js";
import { classifyAttempt } from "../../domain/delivery/classify.js";
import { deliveryDecider, retryWindowOf, type DeliveryCommand, type DeliveryState, type ObservedAttempt } from "../../domain/delivery/delivery.js";
import { effectiveDeliveryPolicy, effectiveRetryPolicy, signingSecrets } from "../../domain/endpoint/endpoint.js";
import type { Admission } from "../../domain/circuit/breaker.js";
import { ack, type Settlement } from "../../streams/consumers.js";
import { ConcurrencyError, type AggregateRef, type EventStore, type LoadedAggregate, type StoredEvent } from "../../streams/event-store.js";
import type { EndpointView, RegistryView } from "../../streams/registry-view.js";
import { signedRequest, type OutboundMessage, type OutboundRequest, type SendResult } from "../outbound/index.js";
import type { MessagePayloads } from "../../streams/message-payloads.js";
import { traceFields, type Logger } from "../shared/logger.js";
import { attemptOutcomeOf, type Metrics } from "../shared/metrics.js";
import type { SecretBox } from "../shared/secret-box.js";
import type { TraceSpan, Tracing } from "../shared/tracing.js";
import type { Cause, EndpointHealth } from "./endpoint-health.js";
import type { Slot } from "./lanes.js";
import { inStage } from "./stages.js";

/** Records of timed-out attempts in flight at once (see `timedOutRecords`). */
const TIMED_OUT_RECORDS_AT_ONCE = 8;

const SYSTEM: Actor = { kind: "system", id: "dispatcher" };
const VIEW_WAIT_MS = 10_000;

type Waiting = Extract<DeliveryState, { status: "pending" | "retrying" }>;

/** What the attempt stages need: each port is the smallest piece of the platform a stage uses. */
export interface AttemptPorts {
  /** prepare: the delivery as stored, and its endpoint as of its routing. */
  store: EventStore;
  view: RegistryView;
  /** prepare: the circuit's say, and record: what the attempt teaches it. */
  health: EndpointHealth;
  /** prepare: the endpoint's secrets, sealed at rest. */
  secretBox: SecretBox;
  /** prepare: the payload of the message a delivery names. */
  payloads: Pick<MessagePayloads, "payloadOf">;
  /** prepare: tokens of the endpoint's and tenant's outbound rate limits, or when to come back. */
  takeTokens(tenantId: string, endpoint: EndpointView): Promise<Settlement | undefined>;
  /** prepare: when a delivery the circuit turned away comes back. */
  circuitComeback(endpointId: string, afterMs: number): Settlement;
  /** send: the request under the process's global slots (its tenant's share was waited for before prepare). */
  send(request: OutboundRequest): Promise<SendResult>;
  logger: Logger;
  tracing: Tracing;
  metrics?: Metrics;
}

/** An attempt ready to go: the signed request and everything record needs. */
interface Prepared {
  ref: AggregateRef;
  loaded: LoadedAggregate<DeliveryState>;
  waiting: Waiting;
  endpoint: EndpointView;
  admission: Admission;
  request: OutboundRequest;
  cause: Cause;
  span: TraceSpan;
  stored: StoredEvent;
}

/**
 * The stages a delivery goes through once it holds a slot of its endpoint's lane: prepare (read
 * the delivery, check endpoint and circuit, read its message's payload, take rate-limit tokens,
 * sign), send, and record (the outcome appended with the attempt in it, the breaker fed, one log
 * line, the metrics). Each returns the settlement of the delivery event, or hands its result to
 * the next.
 */
export function createAttemptStages(ports: AttemptPorts) {
  const { store, view, health, logger, tracing } = ports;

  /**
   * Appends what `command` decides on `loaded`. When the delivery moved on meanwhile (a crashed
   * predecessor's events, or a concurrent dispatcher), it reloads: an attempt an older stream left
   * without its outcome is resolved from the recorded attempt, anything else is already in hand.
   */
  async function decideAndAppend(
    ref: AggregateRef,
    loaded: LoadedAggregate<DeliveryState>,
    command: DeliveryCommand,
    causeId: string,
    stored: StoredEvent,
  ): Promise<string[]> {
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

  const abandon = async (
    ref: AggregateRef,
    loaded: LoadedAggregate<DeliveryState>,
    waiting: Waiting,
    reason: string,
    causeKey: string,
    stored: StoredEvent,
  ): Promise<Settlement> => {
    await decideAndAppend(
      ref,
      loaded,
      { type: "AbandonDelivery", reason, errorClass: "endpoint_unavailable" },
      `${ref.aggregateId}:${causeKey}:${waiting.nextAttempt}`,
      stored,
    );
    return ack;
  };

  /** The circuit turned the attempt away: back once it half-opens, or dead now if the retry window ends first. */
  function circuitClosedTo(
    ref: AggregateRef,
    loaded: LoadedAggregate<DeliveryState>,
    waiting: Waiting,
    endpoint: EndpointView,
    retryInMs: number,
    stored: StoredEvent,
  ): Promise<Settlement> {
    const now = Date.now();
    const retryWindow = retryWindowOf(waiting, effectiveRetryPolicy(endpoint.state).maxDurationMs);
    const decision = admitDelivery({ now, circuitHalfOpenAt: now + retryInMs, retryWindow, maxQueueWaitMs: 0 });
    if (decision.kind === "expire") return abandon(ref, loaded, waiting, decision.reason, "circuit-expired", stored);
    return Promise.resolve(ports.circuitComeback(endpoint.endpointId, decision.kind === "defer" ? decision.afterMs : retryInMs));
  }

  /** prepare: read the delivery to its end, check what may stop the attempt, take tokens, sign. */
  async function prepare(stored: StoredEvent, redelivered: boolean): Promise<Prepared | Settlement> {
    const ref: AggregateRef = { tenantId: stored.envelope.tenantId, aggregateType: "delivery", aggregateId: stored.envelope.aggregateId };
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
    const waiting = state;
    if (!(await view.waitFor(waiting.scheduled.registrySeq, VIEW_WAIT_MS))) return { kind: "nak", delayMs: 1_000 };
    const endpoint = view.endpoint(ref.tenantId, waiting.scheduled.endpointId);
    if (endpoint?.state.status !== "active") {
      const reason = endpoint?.state.status === "disabled" ? `endpoint disabled: ${endpoint.state.disabledReason ?? "no reason"}` : "endpoint deleted";
      return abandon(ref, loaded, waiting, reason, "abandoned", stored);
    }
    const cause: Cause = { stored, deliveryId: ref.aggregateId, attempt: waiting.nextAttempt };
    const admission = await health.admit(endpoint, cause);
    if (!admission.allowed) return circuitClosedTo(ref, loaded, waiting, endpoint, admission.retryInMs, stored);
    let message: OutboundMessage;
    try {
      message = await messageOf(ref, waiting.scheduled);
    } catch (error) {
      health.release(endpoint, admission);
      throw error;
    }
    // Tokens last, so a token is never taken by an attempt that then goes back to the server.
    const deferred = await ports.takeTokens(ref.tenantId, endpoint);
    if (deferred) {
      health.release(endpoint, admission);
      return deferred;
    }
    // One span per attempt made (request and record), continuing the delivery event's trace; the
    // receiver gets its traceparent, and the attempt's events carry it to the next retry.
    const span = tracing.startSpan("webhook.delivery_attempt", {
      kind: "client",
      parent: stored.traceparent,
      attributes: tracing.enabled
        ? {
            "zen.tenant_id": ref.tenantId,
            "zen.delivery_id": ref.aggregateId,
            "zen.endpoint_id": endpoint.endpointId,
            "zen.message_id": waiting.scheduled.messageId,
            "zen.attempt": waiting.nextAttempt,
            "http.request.method": "POST",
          }
        : undefined,
    });
    let request: OutboundRequest;
    try {
      request = sign(endpoint, message, span.traceparent);
    } catch (error) {
      // A secret that cannot be opened (a master key missing from the process): the probe slot goes back.
      span.end();
      health.release(endpoint, admission);
      throw error;
    }
    return { ref, loaded, waiting, endpoint, admission, request, cause, span, stored };
  }

  /** The delivery's message: its own copy of the payload (scheduled as version 1), else the payload of the event it names. */
  async function messageOf(ref: AggregateRef, scheduled: EventData<"delivery.scheduled">): Promise<OutboundMessage> {
    const { messageId, eventType, messageReceivedAt, messageSeq } = scheduled;
    const payload = scheduled.payload ?? (await ports.payloads.payloadOf({ tenantId: ref.tenantId, messageId, messageSeq }));
    return { messageId, eventType, messageReceivedAt, payload };
  }

  function sign(endpoint: EndpointView, message: OutboundMessage, traceparent: string | undefined): OutboundRequest {
    const now = new Date();
    // During a rotation's grace both secrets sign, the new one first (API.md "rotate-secret").
    const secrets = signingSecrets(endpoint.state, now).map((sealed) => ports.secretBox.decrypt(sealed));
    const request = signedRequest({ url: endpoint.state.url, secrets, scheduled: message, now, traceparent });
    return { ...request, timeoutMs: effectiveDeliveryPolicy(endpoint.state).timeoutMs };
  }

  /** record: the attempt and its outcome on the delivery, the breaker, the log line, the metrics. */
  async function record(prepared: Prepared, result: SendResult): Promise<Settlement> {
    const { ref, loaded, waiting, endpoint, admission, cause, span, stored } = prepared;
    const now = new Date();
    const observed: ObservedAttempt = {
      startedAt: result.startedAt.toISOString(),
      latencyMs: result.latencyMs,
      statusCode: result.statusCode,
      networkError: result.networkError,
      error: result.error,
      responseSnippet: result.responseSnippet,
      retryAfterMs: parseRetryAfterMs(result.retryAfter, now),
    };
    const command: DeliveryCommand = {
      type: "RecordAttempt",
      attempt: observed,
      policy: effectiveRetryPolicy(endpoint.state),
      now: now.toISOString(),
      random: Math.random(),
    };
    let recorded: string[] = [];
    let recordFailed = false;
    try {
      if (tracing.enabled) traceAttempt(span, result);
      recorded = await decideAndAppend(
        ref,
        loaded,
        command,
        `${ref.aggregateId}:attempt:${waiting.nextAttempt}`,
        span.traceparent ? { ...stored, traceparent: span.traceparent } : stored,
      );
    } catch (error) {
      recordFailed = true;
      throw error;
    } finally {
      // The breaker learns of every attempt made, recorded or not; this never throws.
      await health.attempted(endpoint, classifyAttempt(observed), admission, cause);
      span.end();
      // One line per attempt made, recorded or not (a failed record is redelivered and resolved
      // without sending again, so this line is the attempt's only one).
      const line = {
        tenantId: ref.tenantId,
        deliveryId: ref.aggregateId,
        endpointId: endpoint.endpointId,
        messageId: waiting.scheduled.messageId,
        attempt: waiting.nextAttempt,
        statusCode: result.statusCode,
        networkError: result.networkError,
        latencyMs: result.latencyMs,
        correlationId: stored.envelope.correlationId,
        ...traceFields(span),
      };
      if (recordFailed) logger.warn({ ...line, recorded: false }, "delivery attempt");
      else logger.info(line, "delivery attempt");
    }
    // Counted once recorded: an attempt another dispatcher recorded first is its to count.
    const outcome = attemptOutcomeOf(recorded);
    if (outcome)
      ports.metrics?.attemptRecorded({
        outcome,
        statusCode: result.statusCode,
        durationMs: result.latencyMs,
        messageReceivedAt: waiting.series === 1 ? waiting.scheduled.messageReceivedAt : undefined,
        now,
      });
    return ack;
  }

  /**
   * Attempts that ran into their timeout end in bursts (a tenant's share of hanging requests,
   * started together, times out together) and each record is an append and the breaker's work (an
   * opening circuit's own appends): recorded eight at a time, they no longer hold every other
   * delivery's record and event-loop turn behind them.
   */
  const timedOutRecords = pLimit(TIMED_OUT_RECORDS_AT_ONCE);
  return {
    /**
     * prepare → send → record for a delivery event that holds a slot of its endpoint's lane; the
     * slot is released with the attempt's latency as soon as the response is in.
     */
    async attemptInSlot(stored: StoredEvent, redelivered: boolean, slot: Slot): Promise<Settlement> {
      const prepared = await inStage("prepare", () => prepare(stored, redelivered));
      if ("kind" in prepared) return prepared;
      let result: SendResult;
      try {
        result = await inStage("send", () => ports.send(prepared.request));
      } catch (error) {
        health.release(prepared.endpoint, prepared.admission);
        prepared.span.fail("the attempt could not be sent");
        prepared.span.end();
        throw error;
      }
      slot.release(result.latencyMs);
      if (result.networkError === "timeout") return inStage("record", () => timedOutRecords(() => record(prepared, result)));
      return inStage("record", () => record(prepared, result));
    },
  };
}

export type AttemptStages = ReturnType<typeof createAttemptStages>;

/** What the attempt span says about the response: its status, or the network failure (never the body). */
function traceAttempt(span: TraceSpan, result: SendResult): void {
  if (result.statusCode !== undefined) span.setAttributes({ "http.response.status_code": result.statusCode });
  if (result.networkError) span.setAttributes({ "error.type": result.networkError });
  if (result.networkError || result.statusCode === undefined || result.statusCode >= 300) {
    span.fail(result.networkError ?? `HTTP ${result.statusCode}`);
  }
}
