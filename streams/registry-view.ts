import { setTimeout as sleep } from "node:timers/promises";
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type StoredMsg } from "@nats-io/jetstream";
import { EVENT_HEADERS, type Envelope } from "../contracts/envelope.js";
import { apiKeyDecider, type ApiKeyState } from "../domain/apikey/apikey.js";
import { endpointDecider, type EndpointState } from "../domain/endpoint/endpoint.js";
import { sourceDecider, type SourceState } from "../domain/source/source.js";
import { tenantDecider, type TenantState } from "../domain/tenant/tenant.js";
import { CONSUME_PULLS, watchConsume, type ConsumeWatch } from "./consumers.js";
import { toDomainEvent } from "./event-store.js";
import type { Topology } from "./topology.js";

/** Registry event bodies read at once while the view catches up. */
const MAX_BODY_READS = 64;
/** The first pause before the view's consumer is re-opened again after a failed re-open; it doubles up to the maximum. */
const REOPEN_PAUSE_MS = 250;
const MAX_REOPEN_PAUSE_MS = 5_000;

/** One consume of the view's consumer, and what its traffic says. */
interface Consuming {
  messages: ConsumerMessages;
  consumeWatch: ConsumeWatch;
}

/** One version of an endpoint, valid from stream sequence `seq` until the next version. */
interface EndpointVersion {
  seq: number;
  createdAt: string;
  updatedAt: string;
  state: EndpointState;
}

/** An endpoint as the registry knows it at some stream sequence. */
export interface EndpointView {
  endpointId: string;
  tenantId: string;
  createdAt: string;
  updatedAt: string;
  state: Exclude<EndpointState, { status: "absent" }>;
}

/** An inbound source as it stands now (deleted ones included, so they answer 404 rather than be looked up again). */
export interface SourceView {
  sourceId: string;
  tenantId: string;
  createdAt: string;
  updatedAt: string;
  state: Exclude<SourceState, { status: "absent" }>;
}

export interface ApiKeyView {
  keyId: string;
  tenantId: string;
  state: Exclude<ApiKeyState, { status: "absent" }>;
}

/**
 * The registry (tenants, API keys, endpoints, inbound sources) folded in memory from the `cmd` branch, in stream
 * order, with an ordered consumer. `waitFor(seq)` makes reads causal: once the view has applied
 * sequence N, it holds every registry change stored before N, and `endpointsAsOf(tenant, N)`
 * answers exactly as the registry stood then.
 */
export function createRegistryView({
  js,
  jsm,
  topology,
  keepHistory = false,
  logger,
}: {
  js: JetStreamClient;
  /** Reads the body of each registry event: the view's consumer brings headers only. */
  jsm: JetStreamManager;
  topology: Topology;
  /**
   * Keep every endpoint version until `forgetBefore` drops it: the router needs them, to route a
   * backlog as of each message's own sequence. Other roles read only the latest version.
   */
  keepHistory?: boolean;
  /** Where a failed consume (a body that cannot be read, a consumer that cannot be re-opened) and a skipped event are told. */
  logger?: { warn(details: object, message: string): void; error(details: object, message: string): void };
}) {
  const tenants = new Map<string, TenantState>();
  const apiKeys = new Map<string, ApiKeyView>();
  const keyIdByHash = new Map<string, string>();
  const endpoints = new Map<string, Map<string, EndpointVersion[]>>();
  const sources = new Map<string, SourceView>();
  const waiters = new Set<{ seq: number; resolve: () => void }>();
  let appliedSeq = 0;
  let stopConsuming: (() => Promise<unknown>) | undefined;
  let loop: Promise<void> | undefined;
  let following = false;
  let watch: ConsumeWatch | undefined;
  const stopping = new AbortController();

  function applyEndpoint(envelope: Envelope, seq: number): void {
    const byId = endpoints.get(envelope.tenantId) ?? new Map<string, EndpointVersion[]>();
    endpoints.set(envelope.tenantId, byId);
    const versions = byId.get(envelope.aggregateId) ?? [];
    const previous = versions.at(-1)?.state ?? endpointDecider.initialState();
    const createdAt = versions[0]?.createdAt ?? envelope.occurredAt;
    versions.push({ seq, createdAt, updatedAt: envelope.occurredAt, state: endpointDecider.evolve(previous, toDomainEvent(envelope) as never) });
    if (!keepHistory) versions.splice(0, versions.length - 1);
    byId.set(envelope.aggregateId, versions);
  }

  function applyApiKey(envelope: Envelope): void {
    const previous = apiKeys.get(envelope.aggregateId)?.state ?? apiKeyDecider.initialState();
    const state = apiKeyDecider.evolve(previous, toDomainEvent(envelope) as never);
    if (state.status === "absent") return;
    apiKeys.set(envelope.aggregateId, { keyId: envelope.aggregateId, tenantId: envelope.tenantId, state });
    keyIdByHash.set(state.keyHash, envelope.aggregateId);
  }

  function applySource(envelope: Envelope): void {
    const key = `${envelope.tenantId}/${envelope.aggregateId}`;
    const previous = sources.get(key);
    const state = sourceDecider.evolve(previous?.state ?? sourceDecider.initialState(), toDomainEvent(envelope) as never);
    if (state.status === "absent") return;
    // A refused request is recorded on the source but does not change it.
    const updatedAt = envelope.type === "signature.rejected" ? (previous?.updatedAt ?? envelope.occurredAt) : envelope.occurredAt;
    sources.set(key, { sourceId: envelope.aggregateId, tenantId: envelope.tenantId, createdAt: previous?.createdAt ?? envelope.occurredAt, updatedAt, state });
  }

  /** Registry events carry what the view folds; message events only move it on. */
  const REGISTRY_TYPES = new Set(["tenant", "apikey", "endpoint", "source"]);

  function fold(seq: number, aggregateType: string | undefined, envelope: Envelope): void {
    if (aggregateType === "source") applySource(envelope);
    else if (aggregateType === "tenant") {
      tenants.set(envelope.aggregateId, tenantDecider.evolve(tenants.get(envelope.aggregateId) ?? tenantDecider.initialState(), toDomainEvent(envelope) as never));
    } else if (aggregateType === "apikey") applyApiKey(envelope);
    else if (aggregateType === "endpoint") applyEndpoint(envelope, seq);
  }

  /**
   * Folds a registry event in and moves the view past `seq`. An event that cannot be decoded or
   * folded (a bug, an event of a newer version) is skipped with an error line: re-reading it cannot
   * help, and a view stuck on it would hold back routing and delivery for every tenant.
   */
  function apply(seq: number, aggregateType: string | undefined, stored: StoredMsg | null | undefined): void {
    try {
      if (stored) fold(seq, aggregateType, stored.json<Envelope>());
    } catch (error) {
      logger?.error({ err: error, seq, aggregateType }, "registry view: an event it cannot fold was skipped; the registry misses it until a restart with the fix");
    }
    appliedSeq = seq;
    for (const waiter of waiters) if (waiter.seq <= appliedSeq) waiter.resolve();
  }

  /**
   * An ordered consumer of the branch after `appliedSeq`. Headers only: the messages that make up
   * most of the branch move the view on by their sequence alone; a registry event's body is read by
   * a direct get, many at once, applied in order.
   */
  const openConsumer = () =>
    js.consumers.get(topology.stream, {
      filter_subjects: topology.commandBranch,
      headers_only: true,
      ...(appliedSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: appliedSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
    });

  /** Applies what one consume brings, in order, until it ends. */
  async function follow(messages: ConsumerMessages, consumeWatch: ConsumeWatch, caughtUp: () => void): Promise<void> {
    const reading: Array<{ message: JsMsg; body?: Promise<StoredMsg | null> }> = [];
    const applyFirst = async () => {
      const { message, body } = reading.shift()!;
      apply(message.seq, message.headers?.get(EVENT_HEADERS.aggregateType), await body);
      if (message.info.pending === 0) caughtUp();
    };
    for await (const message of messages) {
      consumeWatch.progressed();
      const registry = REGISTRY_TYPES.has(message.headers?.get(EVENT_HEADERS.aggregateType) ?? "");
      const body = registry ? jsm.direct.getMessage(topology.stream, { seq: message.seq }) : undefined;
      // A rejected read surfaces when it is applied, ending the loop like a consumer error.
      body?.catch(() => undefined);
      reading.push({ message, body });
      while (reading.length > 0 && (reading.length > MAX_BODY_READS || reading[0]!.body === undefined)) await applyFirst();
      if (message.info.pending === 0 && messages.getPending() === 0) while (reading.length > 0) await applyFirst();
    }
    while (reading.length > 0) await applyFirst();
  }

  /** Consumes `consumer`, or a fresh one from after the last applied event. */
  async function consume(consumer?: Consumer): Promise<Consuming> {
    const messages = await (consumer ?? (await openConsumer())).consume({ max_messages: 1_000, ...CONSUME_PULLS });
    const consumeWatch = watchConsume(messages);
    watch = consumeWatch;
    stopConsuming = () => messages.close();
    return { messages, consumeWatch };
  }

  async function start(): Promise<void> {
    const first = await openConsumer();
    const initial = await first.info();
    let current = await consume(first);
    let caughtUp: () => void = () => {};
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (initial.num_pending === 0) caughtUp();
    following = true;
    // Every end of a consume but `stop()` opens a fresh consumer from after the last applied event:
    // the client recreated the old one after a server restart (and pulls it with a batch of 0), or a
    // body read or the consumer failed. Until then the view holds back nothing it applied, and says
    // it is not following.
    loop = (async () => {
      while (!stopping.signal.aborted) {
        try {
          await follow(current.messages, current.consumeWatch, caughtUp);
        } catch (error) {
          logger?.warn({ err: error, appliedSeq }, "registry view: its consume failed; re-opening it after the last applied event");
          await current.messages.close();
        }
        following = false;
        const reopened = await reopen();
        if (!reopened) break;
        current = reopened;
        following = true;
      }
      following = false;
    })();
    await ready;
  }

  /** Opens the view's consumer again, pausing longer after each refusal, until it opens or `stop()`. */
  async function reopen(): Promise<Consuming | undefined> {
    for (let pauseMs = REOPEN_PAUSE_MS; !stopping.signal.aborted; pauseMs = Math.min(pauseMs * 2, MAX_REOPEN_PAUSE_MS)) {
      try {
        const opened = await consume();
        if (!stopping.signal.aborted) return opened;
        await opened.messages.close();
      } catch (error) {
        logger?.warn({ err: error, appliedSeq }, "registry view: cannot re-open its consumer yet");
        await sleep(pauseMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
    return undefined;
  }

  /** Resolves true once the view has applied stream sequence `seq`, false after `timeoutMs`. */
  function waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (appliedSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  const toView = (tenantId: string, endpointId: string, version: EndpointVersion | undefined): EndpointView | undefined =>
    version && version.state.status !== "absent" ? { endpointId, tenantId, createdAt: version.createdAt, updatedAt: version.updatedAt, state: version.state } : undefined;

  /** The tenant's endpoints as they stood at stream sequence `seq` (deleted ones included). */
  function endpointsAsOf(tenantId: string, seq: number): EndpointView[] {
    const result: EndpointView[] = [];
    for (const [endpointId, versions] of endpoints.get(tenantId) ?? []) {
      const version = versions.findLast((v) => v.seq <= seq);
      const view = toView(tenantId, endpointId, version);
      if (view) result.push(view);
    }
    return result;
  }

  /** Drops endpoint versions no message at or after `seq` can be routed against. */
  function forgetBefore(seq: number): void {
    for (const byId of endpoints.values()) {
      for (const versions of byId.values()) {
        const inForce = versions.findLastIndex((v) => v.seq <= seq);
        if (inForce > 0) versions.splice(0, inForce);
      }
    }
  }

  /** How many endpoints and inbound sources the tenant has now, deleted ones not counted: its quotas are checked against these. */
  function liveCounts(tenantId: string): { endpoints: number; sources: number } {
    let liveEndpoints = 0;
    for (const versions of endpoints.get(tenantId)?.values() ?? []) {
      const status = versions.at(-1)?.state.status;
      if (status !== undefined && status !== "absent" && status !== "deleted") liveEndpoints += 1;
    }
    let liveSources = 0;
    for (const source of sources.values()) if (source.tenantId === tenantId && source.state.status !== "deleted") liveSources += 1;
    return { endpoints: liveEndpoints, sources: liveSources };
  }

  /** Endpoints (not deleted) whose recorded circuit is open or half-open: a gauge reads it on each scrape. */
  function openCircuits(): number {
    let open = 0;
    for (const byId of endpoints.values()) {
      for (const versions of byId.values()) {
        const state = versions.at(-1)?.state;
        if (state && state.status !== "absent" && state.status !== "deleted" && state.circuit.state !== "closed") open += 1;
      }
    }
    return open;
  }

  return {
    start,
    waitFor,
    endpointsAsOf,
    forgetBefore,
    openCircuits,
    liveCounts,
    appliedSeq: () => appliedSeq,
    /** True from `start()` while the view's consume loop iterates and its heartbeats come; false before, while they are missed, once it ended, and after `stop()`. */
    following: () => following && !watch?.stalled(),
    tenant: (tenantId: string) => tenants.get(tenantId),
    /** The inbound source as it stands now. */
    source: (tenantId: string, sourceId: string) => sources.get(`${tenantId}/${sourceId}`),
    /** The endpoint as it stands now. */
    endpoint: (tenantId: string, endpointId: string) => toView(tenantId, endpointId, endpoints.get(tenantId)?.get(endpointId)?.at(-1)),
    apiKeyByHash: (keyHash: string) => {
      const keyId = keyIdByHash.get(keyHash);
      return keyId === undefined ? undefined : apiKeys.get(keyId);
    },
    async stop(): Promise<void> {
      stopping.abort();
      await stopConsuming?.();
      await loop;
      for (const waiter of waiters) waiters.delete(waiter);
    },
  };
}

export type RegistryView = ReturnType<typeof createRegistryView>;
