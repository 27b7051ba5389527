import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import pLimit from "p-limit";
import { EVENT_HEADERS } from "../../contracts/envelope.js";
import { ownLimit } from "../../domain/tenant/tenant.js";
import type { EventData } from "../../contracts/events.js";
import type { BreakerConfig } from "../../domain/circuit/breaker.js";
import { admitDelivery, CIRCUIT_COMEBACK_SPACING_MS, type AdmissionDecision } from "../../domain/delivery/admission.js";
import { perSecondBucket } from "../../domain/limits/token-bucket.js";
import { endpointIdOf } from "../../domain/routing/fanout.js";
import { DomainError } from "../../domain/errors.js";
import { retryLater, toStoredEvent, type Settlement } from "../../streams/consumers.js";
import type { EventStore, StoredEvent } from "../../streams/event-store.js";
import { createReactor, TAKEOVER_AFTER_MS, type ReactorMessage } from "../../streams/reactor.js";
import type { Parking } from "../../streams/parking.js";
import { createMessagePayloads, type MessagePayloads } from "../../streams/message-payloads.js";
import type { EndpointView, RegistryView } from "../../streams/registry-view.js";
import type { Topology } from "../../streams/topology.js";
import type { HttpSender } from "../outbound/index.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { SecretBox } from "../shared/secret-box.js";
import { processClock } from "../shared/process-clock.js";
import { createLocalBuckets, type SharedBuckets } from "../shared/shared-buckets.js";
import { NOOP_TRACING, type Tracing } from "../shared/tracing.js";
import { createAttemptStages } from "./attempt.js";
import { createComebacks } from "./comebacks.js";
import { createEndpointHealth } from "./endpoint-health.js";
import { createLanes } from "./lanes.js";
import { createLoopLag } from "./loop-lag.js";
import { createOutboundLimits, type NamedBucket } from "./outbound-limits.js";
import { inStage, untagged } from "./stages.js";
import { createTenantShares } from "./tenant-shares.js";

/**
 * A retry that is not yet due keeps its unacked slot until the server redelivers it (2.9 has no
 * message scheduling), so the consumer must allow far more unacked messages than are ever retrying.
 */
const MAX_ACK_PENDING = 100_000;
/** How long a delivery already being attempted in this process is put back for, if it comes again. */
const IN_FLIGHT_RETRY_MS = 5_000;
/** A delivery that would wait longer than this in its endpoint's lane goes back to the server instead. */
const MAX_QUEUE_WAIT_MS = 2_000;
/** The delivery events that start an attempt (a replay's `delivery.replayed` opens a new series). */
const TRIGGERS = new Set(["delivery.scheduled", "delivery.retry_scheduled", "delivery.replayed"]);

/** A tenant's share of a dispatcher's attempts in flight unless configured: half, and never less than one endpoint's. */
export const defaultTenantShare = (concurrency: number, perEndpoint: number): number => Math.min(concurrency, Math.max(perEndpoint, Math.floor(concurrency / 2)));

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
  /** Attempts in flight for any one tenant (default half of `concurrency`), so no tenant can take every slot. */
  concurrencyPerTenant?: number;
  /** Delivery messages in hand at once (waiting in a lane or being attempted): the flow-control window. */
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
  /** Parks a delivery event whose handling keeps failing (unset: retried forever). */
  parking?: Parking;
  /** The payloads of the messages deliveries name: the process's, shared with its router (unset: this dispatcher's own). */
  payloads?: Pick<MessagePayloads, "payloadOf">;
}

/**
 * The dispatcher: a reactor on delivery events, a row of stages. **admit** (from the event and
 * what this process knows, no store read): a retry not yet due, an endpoint behind an open
 * circuit, or one too slow to take more goes back to the server, spaced per endpoint; **slot**: a
 * place in the endpoint's lane, in process, where a healthy endpoint's deliveries flow as fast as
 * it answers; **share**: a place among its tenant's attempts in flight; then **prepare** (read,
 * check, tokens, sign), **send** and **record** (see `attempt.ts`); the reactor settles the event
 * with what they return.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { view, topology, logger } = deps;
  const tracing = deps.tracing ?? NOOP_TRACING;
  const sendSlots = pLimit(deps.concurrency);
  const platformShare = deps.concurrencyPerTenant ?? defaultTenantShare(deps.concurrency, deps.concurrencyPerEndpoint);
  // The operator's maxAttemptsInFlight for a tenant, else the platform's share; never past the process's own.
  const tenantShares = createTenantShares(
    deps.concurrency,
    (tenantId) => Math.min(deps.concurrency, ownLimit(view.tenant(tenantId), "maxAttemptsInFlight") ?? platformShare),
    () => deps.metrics?.quotaRefused("attempts_in_flight"),
  );
  const limits = createOutboundLimits(deps.outboundBuckets ?? createLocalBuckets());
  const comebacks = createComebacks();
  const loopLag = createLoopLag();
  // Lanes time attempts on the process clock: after a freeze, attempts still in flight are not taken for a hang.
  const lanes = createLanes({ slotsPerEndpoint: deps.concurrencyPerEndpoint, now: processClock.now });
  const inHand = new Set<number>();
  /** Delivery events in hand by tenant, for its share of the window (see TENANT_WINDOW_SHARE). */
  const inHandByTenant = new Map<string, number>();
  const maxHandled = deps.maxHandled ?? 4_096;
  const health = createEndpointHealth({ store: deps.store, logger, breaker: deps.breaker, disableAfterMs: deps.endpointDisableAfterMs });

  /** The buckets an attempt to `endpoint` takes a token from: its own rate limit, its tenant's outbound limit. */
  function bucketsFor(tenantId: string, endpoint: EndpointView | undefined): NamedBucket[] {
    const buckets: NamedBucket[] = [];
    const perSecond = endpoint?.state.rateLimit?.perSecond;
    if (endpoint && perSecond) buckets.push({ key: `endpoint.${endpoint.endpointId}`, bucket: perSecondBucket(perSecond) });
    const outbound = ownLimit(view.tenant(tenantId), "outbound");
    if (outbound) buckets.push({ key: `tenant.${tenantId}`, bucket: outbound });
    return buckets;
  }

  /** Waits for the rate-limit tokens; a long wait goes back to the server instead, no attempt spent. */
  async function takeTokens(tenantId: string, endpoint: EndpointView): Promise<Settlement | undefined> {
    const buckets = bucketsFor(tenantId, endpoint);
    if (buckets.length === 0) return undefined;
    const admission = await limits.admit(buckets);
    if (!("deferMs" in admission)) return undefined;
    deps.metrics?.deliveryDeferred("rate_limited");
    return retryLater(admission.deferMs + Math.random() * 100);
  }

  const stages = createAttemptStages({
    store: deps.store,
    view,
    health,
    secretBox: deps.secretBox,
    payloads: deps.payloads ?? createMessagePayloads({ jsm: deps.jsm, topology: deps.topology }),
    takeTokens,
    circuitComeback: (endpointId, afterMs) => comeback(endpointId, { kind: "defer", reason: "circuit_open", afterMs, spacingMs: CIRCUIT_COMEBACK_SPACING_MS }),
    send: (request) => sendSlots(() => deps.sender.send(request)),
    logger,
    tracing,
    metrics: deps.metrics,
  });

  /** When a deferred delivery comes back: queued behind the endpoint's other comebacks when spaced. */
  function comeback(endpointId: string, decision: Extract<AdmissionDecision, { kind: "defer" }>): Settlement {
    deps.metrics?.deliveryDeferred(decision.reason);
    if (decision.spacingMs === 0) return retryLater(decision.afterMs);
    return retryLater(comebacks.delayFor(endpointId, decision.afterMs, decision.spacingMs, Date.now()));
  }

  /** admit: what the event and this process's lanes say, before any read. */
  function admit(stored: StoredEvent, endpointId: string): AdmissionDecision {
    const { envelope } = stored;
    const now = Date.now();
    const dueAt = envelope.type === "delivery.retry_scheduled" ? Date.parse((envelope.data as EventData<"delivery.retry_scheduled">).nextAttemptAt) : undefined;
    const endpoint = view.endpoint(envelope.tenantId, endpointId);
    const circuit = endpoint?.state.circuit;
    // Open: back at half-open time; half-open with every probe out: back when their answers are due.
    let circuitHalfOpenAt: number | undefined;
    if (circuit?.state === "open" && circuit.halfOpenAt !== undefined) circuitHalfOpenAt = Date.parse(circuit.halfOpenAt);
    else if (endpoint && circuit?.state === "half_open") {
      const refusedForMs = health.refusedForMs(endpoint);
      if (refusedForMs !== undefined) circuitHalfOpenAt = now + refusedForMs;
    }
    const lane = { ...lanes.load(endpointId), processLagMs: loopLag.lagMs() };
    const rates = bucketsFor(envelope.tenantId, endpoint).map(({ bucket }) => bucket.refillPerSecond);
    if (rates.length > 0) lane.perSecond = Math.min(...rates);
    const tenantInHand = inHandByTenant.get(envelope.tenantId);
    return admitDelivery({ now, dueAt, circuitHalfOpenAt, lane, inHand: { count: inHand.size, limit: maxHandled }, tenantInHand, maxQueueWaitMs: MAX_QUEUE_WAIT_MS });
  }

  async function handle(message: ReactorMessage): Promise<Settlement> {
    // A redelivery of a message this process still holds (a handler that outlived the ack wait)
    // must not send the delivery a second time in parallel.
    if (inHand.has(message.seq)) return retryLater(IN_FLIGHT_RETRY_MS);
    inHand.add(message.seq);
    let heldFor: string | undefined;
    try {
      const stored = toStoredEvent(message);
      heldFor = stored.envelope.tenantId;
      inHandByTenant.set(heldFor, (inHandByTenant.get(heldFor) ?? 0) + 1);
      // Only a tracing dispatcher reads the trace context; its attempt spans continue it.
      if (tracing.enabled) stored.traceparent = message.headers?.get(EVENT_HEADERS.traceparent) || undefined;
      const endpointId = endpointIdOf(stored.envelope.aggregateId);
      const decision = await inStage("admit", async () => admit(stored, endpointId));
      if (decision.kind === "defer") return comeback(endpointId, decision);
      const slot = await inStage("slot", () => lanes.acquire(endpointId));
      try {
        // The tenant's share is waited for before the attempt is prepared, so what prepare checks
        // (the circuit above all) is what holds when it goes out: a tenant's hanging attempts that
        // time out together open their circuits, and the attempts waiting behind them go back
        // instead of going out to hang in turn.
        return await inStage("share", () => tenantShares.run(stored.envelope.tenantId, () => stages.attemptInSlot(stored, message.info.redelivered, slot)));
      } finally {
        slot.release();
      }
    } catch (error) {
      // Another dispatcher moved the delivery on meanwhile: nothing is left to do here.
      const cause = untagged(error);
      if (cause instanceof DomainError && cause.code === "conflict") return { kind: "ack" };
      throw error;
    } finally {
      inHand.delete(message.seq);
      if (heldFor !== undefined) {
        const left = inHandByTenant.get(heldFor)! - 1;
        if (left > 0) inHandByTenant.set(heldFor, left);
        else inHandByTenant.delete(heldFor);
      }
    }
  }

  const reactor = createReactor(
    {
      js: deps.js,
      jsm: deps.jsm,
      stream: topology.stream,
      durable: topology.consumerName("dispatcher"),
      filterSubject: topology.deliveryBranch,
      ackWaitMs: TAKEOVER_AFTER_MS,
      maxAckPending: MAX_ACK_PENDING,
      concurrency: maxHandled,
      logger,
      failureMessage: "dispatch failed; the delivery event will be redelivered",
      parking: deps.parking,
    },
    { triggers: TRIGGERS, handle },
  );
  return {
    start: reactor.start,
    running: reactor.running,
    async stop(): Promise<void> {
      await reactor.stop();
      loopLag.stop();
    },
  };
}
