import type { Actor } from "../../contracts/common.js";
import {
  DEFAULT_BREAKER_CONFIG,
  initialBreaker,
  stepBreaker,
  type Admission,
  type BreakerConfig,
  type BreakerInput,
  type BreakerState,
  type CircuitEvent,
  type Transition,
} from "../../domain/circuit/breaker.js";
import { DEFAULT_DISABLE_AFTER_MS, GONE_REASON, unhealthyReason } from "../../domain/circuit/health.js";
import type { Classification } from "../../domain/delivery/classify.js";
import { endpointDecider, type EndpointCommand } from "../../domain/endpoint/endpoint.js";
import { effectiveDeliveryPolicy } from "../../domain/endpoint/record.js";
import type { EventStore, StoredEvent } from "../../streams/event-store.js";
import type { EndpointView } from "../../streams/registry-view.js";
import { traceFields, type Logger } from "../shared/logger.js";

const SYSTEM: Actor = { kind: "system", id: "dispatcher" };

export interface EndpointHealthDeps {
  store: EventStore;
  logger: Logger;
  /** Overrides of {@link DEFAULT_BREAKER_CONFIG} (5 failures, 60 s open, 3 probes). */
  breaker?: Partial<BreakerConfig>;
  /** Continuous failure after which an endpoint is disabled (default 5 days). */
  disableAfterMs?: number;
  now?: () => Date;
}

/** The delivery event being handled: the endpoint events it causes are correlated with it. */
export interface Cause {
  stored: StoredEvent;
  deliveryId: string;
  attempt: number;
}

interface Entry {
  breaker: BreakerState;
  /** The recorded circuit (and status) last taken over from the registry view. */
  seen: string;
}

const recordedKey = ({ state }: EndpointView) => `${state.status}|${state.circuit.state}|${state.circuit.halfOpenAt ?? ""}|${state.circuit.failingSince ?? ""}`;

const commandFor = (event: CircuitEvent): EndpointCommand => {
  if (event.type === "endpoint.circuit_opened") return { type: "OpenCircuit", ...event.data };
  return event.type === "endpoint.circuit_half_opened" ? { type: "HalfOpenCircuit" } : { type: "CloseCircuit" };
};

/**
 * Endpoint health in one dispatcher process: a local circuit breaker per endpoint, fed by every
 * attempt's classification, whose transitions are appended to the endpoint aggregate so every
 * dispatcher learns them through the registry view (and takes them over). It also disables an
 * endpoint that answered 410, or whose failures have lasted longer than `disableAfterMs`.
 * Appends to one endpoint are made one after another, so its events keep the breaker's order.
 */
export function createEndpointHealth(deps: EndpointHealthDeps) {
  const { store, logger } = deps;
  const config: BreakerConfig = { ...DEFAULT_BREAKER_CONFIG, ...deps.breaker };
  const disableAfterMs = deps.disableAfterMs ?? DEFAULT_DISABLE_AFTER_MS;
  const now = deps.now ?? (() => new Date());
  const entries = new Map<string, Entry>();
  const writes = new Map<string, Promise<void>>();
  const keyOf = (endpoint: EndpointView) => `${endpoint.tenantId}/${endpoint.endpointId}`;

  /** This endpoint's breaker, having taken over the recorded circuit if that changed since last seen. */
  function step(endpoint: EndpointView, input: BreakerInput) {
    const key = keyOf(endpoint);
    const entry = entries.get(key) ?? { breaker: initialBreaker(), seen: "" };
    entries.set(key, entry);
    const seen = recordedKey(endpoint);
    if (entry.seen !== seen) {
      entry.breaker = stepBreaker(entry.breaker, { type: "Adopt", circuit: endpoint.state.circuit }, config).state;
      entry.seen = seen;
    }
    const result = stepBreaker(entry.breaker, input, config);
    entry.breaker = result.state;
    // A healthy endpoint needs no memory: its breaker is the initial one, rebuilt on demand.
    if (result.state.state === "closed" && result.state.consecutiveFailures === 0 && endpoint.state.circuit.state === "closed") entries.delete(key);
    return result;
  }

  function write(endpoint: EndpointView, command: EndpointCommand, causeId: string, cause: Cause): Promise<void> {
    const key = keyOf(endpoint);
    const ref = { tenantId: endpoint.tenantId, aggregateType: "endpoint" as const, aggregateId: endpoint.endpointId };
    const context = { correlationId: cause.stored.envelope.correlationId, causationId: cause.stored.envelope.id, actor: SYSTEM, now: now() };
    const log = {
      tenantId: endpoint.tenantId,
      endpointId: endpoint.endpointId,
      deliveryId: cause.deliveryId,
      command: command.type,
      correlationId: context.correlationId,
      ...traceFields(cause.stored),
    };
    const next = (writes.get(key) ?? Promise.resolve())
      .then(async () => {
        const result = await store.handle(ref, endpointDecider, command, { causeId, context });
        if (result.envelopes.length > 0) logger.info({ ...log, events: result.envelopes.map((e) => e.type), seq: result.lastSeq }, "endpoint health changed");
      })
      // The breaker is this process's own either way; a lost event is decided again by the next attempts.
      .catch((error: unknown) => logger.warn({ ...log, err: error }, "could not record an endpoint health change"));
    writes.set(key, next);
    void next.then(() => writes.get(key) === next && writes.delete(key));
    return next;
  }

  async function record(endpoint: EndpointView, transitions: readonly Transition[], cause: Cause): Promise<void> {
    for (const { event, causeKey } of transitions) await write(endpoint, commandFor(event), `${endpoint.endpointId}:circuit:${causeKey}`, cause);
  }

  return {
    /**
     * How long this process's breaker would turn an attempt to the endpoint away now (nothing
     * changed, nothing recorded), or undefined if it might go: a half-open circuit whose probes are
     * all out is known here only, and a delivery it would refuse need not be read first.
     */
    refusedForMs(endpoint: EndpointView): number | undefined {
      const entry = entries.get(keyOf(endpoint));
      if (!entry || entry.seen !== recordedKey(endpoint)) return undefined;
      const { admission } = stepBreaker(
        entry.breaker,
        { type: "Admit", now: now().toISOString(), probeTimeoutMs: effectiveDeliveryPolicy(endpoint.state).timeoutMs },
        config,
      );
      return admission?.allowed === false ? admission.retryInMs : undefined;
    },

    /**
     * Whether an attempt to this (active) endpoint may go now. While the circuit is open it may not
     * (nothing is spent; `retryInMs` says when to come back); once due, the circuit half-opens and
     * up to `maxProbes` attempts go as probes.
     */
    async admit(endpoint: EndpointView, cause: Cause): Promise<Admission> {
      const result = step(endpoint, { type: "Admit", now: now().toISOString(), probeTimeoutMs: effectiveDeliveryPolicy(endpoint.state).timeoutMs });
      await record(endpoint, result.transitions, cause);
      return result.admission!;
    },

    /** An admitted attempt that will not be sent after all: its probe slot is free again. */
    release(endpoint: EndpointView, admission: Admission): void {
      if (admission.allowed && admission.probe) step(endpoint, { type: "ReleaseProbe" });
    },

    /** Feeds one attempt's classification in, and records what follows from it on the endpoint. */
    async attempted(endpoint: EndpointView, classification: Classification, admission: Admission, cause: Cause): Promise<void> {
      const at = now().toISOString();
      const probe = admission.allowed && admission.probe;
      const { verdict, reason } = classification;
      const result = step(endpoint, { type: "RecordResult", verdict, reason, probe, now: at });
      await record(endpoint, result.transitions, cause);
      if (classification.disablesEndpoint) {
        await write(endpoint, { type: "DisableEndpoint", reason: GONE_REASON }, `${endpoint.endpointId}:disabled:gone:${cause.deliveryId}:${cause.attempt}`, cause);
        return;
      }
      if (verdict !== "retry") return;
      const { failingSince } = result.state;
      const unhealthy = unhealthyReason({ failingSince, now: at, disableAfterMs });
      if (unhealthy) await write(endpoint, { type: "DisableEndpoint", reason: unhealthy }, `${endpoint.endpointId}:disabled:unhealthy:${failingSince}`, cause);
    },
  };
}

export type EndpointHealth = ReturnType<typeof createEndpointHealth>;
