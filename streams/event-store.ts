import { setTimeout as sleep } from "node:timers/promises";
import { headers as natsHeaders, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { AggregateType, Actor } from "../contracts/common.js";
import { EVENT_HEADERS, type Envelope } from "../contracts/envelope.js";
import { schemaVersionOf, type DomainEvent } from "../contracts/events.js";
import type { Decider } from "../domain/decider.js";
import { assertVersionKnown, upcastEnvelope } from "../domain/upcast.js";
import { sealAndSerialise } from "./envelope.js";
import { createJetStreamAppender, type JetStreamAppender } from "./jetstream-appender.js";
import type { Topology } from "./topology.js";
import { isWrongLastSequence } from "./jetstream-errors.js";

/** Which aggregate: its subject is derived from these three. */
export interface AggregateRef {
  tenantId: string;
  aggregateType: AggregateType;
  aggregateId: string;
}

/** Who and what caused the events being appended; copied onto every envelope. */
export interface CommandContext {
  correlationId: string;
  causationId: string | null;
  actor: Actor;
  now: Date;
  /** A W3C traceparent to carry on the message headers, when tracing is on. */
  traceparent?: string;
}

/** An aggregate's state as of `version`, the stream sequence of its last event (0: no events). */
export interface LoadedAggregate<S> {
  state: S;
  version: number;
  lastHash: string | null;
}

/** An event as read from the stream. */
export interface StoredEvent {
  seq: number;
  envelope: Envelope;
  /** The W3C `traceparent` it was published with: set by a consumer that traces, else absent. */
  traceparent?: string;
}

export interface AppendResult {
  /** Stream sequence of the last event appended (or of the aggregate's last event when none were). */
  lastSeq: number;
  envelopes: Envelope[];
}

/**
 * The aggregate moved on since it was loaded: another writer appended, or this command's cause
 * already wrote its events (a redelivered or retried command). Reload and decide again.
 */
export class ConcurrencyError extends Error {
  constructor(readonly subject: string) {
    super(`concurrent append to ${subject}`);
    this.name = "ConcurrencyError";
  }
}

/** An aggregate's events do not chain: the log was edited or is corrupt. */
export class IntegrityError extends Error {
  constructor(
    readonly subject: string,
    seq: number,
  ) {
    super(`hash chain broken on ${subject} at stream sequence ${seq}`);
    this.name = "IntegrityError";
  }
}

const MSG_ID_HEADER = "Nats-Msg-Id";
const EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER = "Nats-Expected-Last-Subject-Sequence";
const MAX_CACHED_AGGREGATES = 10_000;
/**
 * How long an append whose answer was lost (a timeout, a reconnect) is re-sent until one comes:
 * the first send may be stored, and only an answer to the same message id says whether it was.
 */
const RESOLVE_UNANSWERED_MS = 10_000;
/** The pause between re-sends that found JetStream not answering yet (a server starting up) or NATS away. */
const RESEND_PAUSE_MS = 200;

interface CacheEntry {
  state: unknown;
  version: number;
  lastHash: string | null;
}

export interface EventStoreDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  topology: Topology;
  /** Conflicting appends are retried this many times after a reload. */
  maxConflictRetries?: number;
  /** What publishes the events; a test passes one that loses answers. */
  appender?: Pick<JetStreamAppender, "publish">;
}

/**
 * The event store over one JetStream stream. Loading an aggregate walks its subject with direct
 * gets (`next_by_subj`), never a consumer, and keeps the folded state in a bounded cache so a
 * writer that already holds the latest version pays no round trip. Appends are optimistic
 * (`expect.lastSubjectSequence`) and carry a `Nats-Msg-Id` derived from the command's cause.
 */
export function createEventStore({ nc, jsm, topology, maxConflictRetries = 5, appender = createJetStreamAppender(nc) }: EventStoreDeps) {
  const cache = new Map<string, CacheEntry>();

  const subjectOf = (ref: AggregateRef) => topology.aggregateSubject(ref.tenantId, ref.aggregateType, ref.aggregateId);

  function remember(subject: string, entry: CacheEntry): void {
    cache.delete(subject);
    cache.set(subject, entry);
    if (cache.size > MAX_CACHED_AGGREGATES) cache.delete(cache.keys().next().value as string);
  }

  /**
   * Every event of one aggregate from `afterSeq` on, oldest first, as stored (not upcast), so its
   * hash chain verifies; folding upcasts each one (`toDomainEvent`).
   */
  async function* readSubject(subject: string, afterSeq = 0): AsyncGenerator<StoredEvent> {
    let seq = afterSeq + 1;
    for (;;) {
      const message = await jsm.direct.getMessage(topology.stream, { seq, next_by_subj: subject });
      if (!message) return;
      yield { seq: message.seq, envelope: message.json<Envelope>() };
      seq = message.seq + 1;
    }
  }

  async function load<S>(
    ref: AggregateRef,
    // biome-ignore lint/suspicious/noExplicitAny: loading folds events only, whatever commands and event subtypes the decider takes
    decider: Decider<any, S, any>,
    options: {
      /** The event that triggered this load, read from a consumer. */
      knownLast?: StoredEvent;
      /** The caller knows nothing follows `knownLast` (its first delivery of an aggregate-creating event). */
      knownLastIsLatest?: boolean;
      fresh?: boolean;
    } = {},
  ): Promise<LoadedAggregate<S>> {
    const subject = subjectOf(ref);
    const { knownLast } = options;
    const cached = options.fresh ? undefined : cache.get(subject);
    // Without that knowledge, walk on from the cache: it always holds a true prefix of the subject.
    const latest = options.knownLastIsLatest ? knownLast : undefined;
    if (cached && latest && cached.version === latest.seq) return cached as LoadedAggregate<S>;
    if (latest && latest.envelope.prevHash === null) {
      // The aggregate's first event, known to be its last too: it carries the whole history.
      const state = decider.evolve(decider.initialState(), toDomainEvent(latest.envelope));
      const entry = { state, version: latest.seq, lastHash: latest.envelope.hash };
      remember(subject, entry);
      return entry;
    }
    let state = (cached?.state as S | undefined) ?? decider.initialState();
    let version = cached?.version ?? 0;
    let lastHash = cached?.lastHash ?? null;
    for await (const { seq, envelope } of readSubject(subject, version)) {
      if (envelope.prevHash !== lastHash) throw new IntegrityError(subject, seq);
      state = decider.evolve(state, toDomainEvent(envelope));
      version = seq;
      lastHash = envelope.hash;
    }
    remember(subject, { state, version, lastHash });
    return { state, version, lastHash };
  }

  async function append(
    ref: AggregateRef,
    events: readonly DomainEvent[],
    options: { expectedVersion: number; prevHash: string | null; causeId: string; context: CommandContext },
  ): Promise<AppendResult> {
    const subject = subjectOf(ref);
    let expected = options.expectedVersion;
    let prevHash = options.prevHash;
    const envelopes: Envelope[] = [];
    for (const [index, event] of events.entries()) {
      const { envelope, json } = sealAndSerialise({
        id: `${options.causeId}:${index}`,
        type: event.type,
        schemaVersion: schemaVersionOf(event.type),
        tenantId: ref.tenantId,
        aggregateType: ref.aggregateType,
        aggregateId: ref.aggregateId,
        occurredAt: options.context.now.toISOString(),
        correlationId: options.context.correlationId,
        causationId: options.context.causationId,
        actor: options.context.actor,
        data: event.data,
        prevHash,
      });
      expected = await publish(subject, envelope, json, expected, options.context.traceparent);
      prevHash = envelope.hash;
      envelopes.push(envelope);
    }
    return { lastSeq: expected, envelopes };
  }

  async function publish(subject: string, envelope: Envelope, json: string, expectedSeq: number, traceparent?: string): Promise<number> {
    const headers = natsHeaders();
    headers.set(EVENT_HEADERS.type, envelope.type);
    headers.set(EVENT_HEADERS.tenant, envelope.tenantId);
    headers.set(EVENT_HEADERS.aggregateType, envelope.aggregateType);
    headers.set(EVENT_HEADERS.aggregateId, envelope.aggregateId);
    headers.set(EVENT_HEADERS.correlation, envelope.correlationId);
    if (traceparent) headers.set(EVENT_HEADERS.traceparent, traceparent);
    headers.set(MSG_ID_HEADER, envelope.id);
    headers.set(EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, String(expectedSeq));
    /** Set once a send went unanswered: re-sends go on until then. */
    let giveUpAt: number | undefined;
    for (;;) {
      try {
        const ack = await appender.publish(subject, json, headers, giveUpAt === undefined ? undefined : Math.max(1, giveUpAt - Date.now()));
        // The same cause already wrote an event with this id: this very envelope (an earlier send of
        // this append, its answer lost) is success; any other means the state it was decided on is
        // stale, and the stored event (not this one) is what the next event must chain to.
        if (ack.duplicate && (await storedHash(ack.seq)) !== envelope.hash) throw new ConcurrencyError(subject);
        return ack.seq;
      } catch (error) {
        if (isWrongLastSequence(error)) throw new ConcurrencyError(subject);
        // Unanswered: stored or not, only a re-send with the same message id can tell. After one,
        // any other failure ("no responders" while JetStream starts, "not sent" while disconnected,
        // a stream without a leader yet) says nothing about the earlier sends either.
        const unanswered = error instanceof TimeoutError || giveUpAt !== undefined;
        if (!unanswered) throw error;
        giveUpAt ??= Date.now() + RESOLVE_UNANSWERED_MS;
        if (Date.now() >= giveUpAt) throw error;
        if (!(error instanceof TimeoutError)) await sleep(RESEND_PAUSE_MS);
      }
    }
  }

  async function storedHash(seq: number): Promise<string | undefined> {
    const message = await jsm.direct.getMessage(topology.stream, { seq });
    return message?.json<Envelope>().hash;
  }

  /**
   * Load → decide → append, retried on a concurrent append with a fresh load. `causeId` makes the
   * event ids (and so the JetStream dedupe ids): the same cause never writes its events twice.
   */
  async function handle<C, S>(
    ref: AggregateRef,
    // biome-ignore lint/suspicious/noExplicitAny: each decider narrows DomainEvent to its own events
    decider: Decider<C, S, any>,
    command: C,
    options: { causeId: string; context: CommandContext; knownLast?: StoredEvent; knownLastIsLatest?: boolean },
  ): Promise<AppendResult & { state: S }> {
    for (let attempt = 0; ; attempt++) {
      const hint = attempt === 0 ? { knownLast: options.knownLast, knownLastIsLatest: options.knownLastIsLatest } : { fresh: true };
      const loaded = await load(ref, decider, hint);
      const events = decider.decide(command, loaded.state) as DomainEvent[];
      try {
        const result = await append(ref, events, {
          expectedVersion: loaded.version,
          prevHash: loaded.lastHash,
          causeId: options.causeId,
          context: options.context,
        });
        const state = events.reduce((s, e) => decider.evolve(s, e), loaded.state);
        const last = result.envelopes.at(-1);
        remember(subjectOf(ref), { state, version: result.lastSeq || loaded.version, lastHash: last?.hash ?? loaded.lastHash });
        return { ...result, lastSeq: result.lastSeq || loaded.version, state };
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= maxConflictRetries) throw error;
        cache.delete(subjectOf(ref));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (attempt + 1)));
      }
    }
  }

  /** The stream's last sequence now: what a read model must reach to reflect everything stored so far. */
  async function streamLastSeq(): Promise<number> {
    return (await jsm.streams.info(topology.stream)).state.last_seq;
  }

  return { load, append, handle, readSubject, subjectOf, streamLastSeq };
}

export type EventStore = ReturnType<typeof createEventStore>;

/**
 * The `{type, data}` a decider folds, taken from a stored envelope upcast to its type's current
 * version. An event of a version newer than this code's is refused (`NewerEventVersionError`), not
 * folded as if it were current: the handling fails and is retried (and parked in time) until the
 * process is upgraded, instead of acting on a shape it does not know.
 */
export function toDomainEvent(envelope: Envelope): DomainEvent {
  assertVersionKnown(envelope);
  const { type, data } = upcastEnvelope(envelope);
  return { type, data } as DomainEvent;
}
