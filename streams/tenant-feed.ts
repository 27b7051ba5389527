import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { AggregateType } from "../contracts/common.js";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { CONSUME_PULLS } from "./consumers.js";
import type { Topology } from "./topology.js";

/** One event of the log as stored: its stream sequence, when it was stored, and its envelope's exact JSON. */
export interface FeedEvent {
  seq: number;
  time: Date;
  type: string;
  json: string;
}

export interface FeedQuery {
  /** Events after this stream sequence. */
  afterSeq?: number;
  /** Events stored at or after this time. */
  since?: Date;
  /** Events stored at or before this time. */
  until?: Date;
  /** One aggregate's events only. */
  aggregate?: { type: AggregateType; id: string };
  limit: number;
}

export interface TenantFeedDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  /** How long a follower's consumer outlives its last pull when nobody deleted it (default 30 s). */
  inactiveMs?: number;
}

/** A follower's consumer left behind by a process that died goes after this long without a pull. */
const FEED_INACTIVE_MS = 30_000;
const REOPEN_PAUSE_MS = 250;
const REOPEN_FOR_MS = 30_000;

/**
 * One tenant's events, straight from the log: what auditors export and operators tail. Only that
 * tenant's subjects are ever read, so no filter in the caller can reach another tenant's events.
 */
export function createTenantFeed({ js, jsm, topology, inactiveMs = FEED_INACTIVE_MS }: TenantFeedDeps) {
  const { stream } = topology;
  const subjectOf = (tenantId: string, aggregate?: FeedQuery["aggregate"]) =>
    aggregate ? topology.aggregateSubject(tenantId, aggregate.type, aggregate.id) : topology.tenantEvents(tenantId);

  /**
   * A follower's consumer from after `lastSeq`: no acks, in memory, one replica. While JetStream is
   * coming back (a restart) it is asked again every {@link REOPEN_PAUSE_MS} for up to {@link REOPEN_FOR_MS}.
   */
  async function openFeedConsumer(tenantId: string, lastSeq: number, signal: AbortSignal) {
    const config = {
      filter_subject: topology.tenantEvents(tenantId),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: lastSeq + 1,
      ack_policy: AckPolicy.None,
      inactive_threshold: nanos(inactiveMs),
      mem_storage: true,
      num_replicas: 1,
    };
    for (const giveUpAt = Date.now() + REOPEN_FOR_MS; ; ) {
      try {
        return await jsm.consumers.add(stream, config);
      } catch (error) {
        if (signal.aborted || Date.now() >= giveUpAt) throw error;
        await sleep(REOPEN_PAUSE_MS, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /**
   * The first sequence stored at or after `since`: stream time grows with the sequence, so a binary
   * search over direct gets finds it (2.9 has no start-time direct get).
   */
  async function firstSeqSince(since: Date): Promise<number> {
    const { state } = await jsm.streams.info(stream);
    let low = state.first_seq;
    let high = state.last_seq + 1;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const found = await jsm.direct.getMessage(stream, { seq: middle, next_by_subj: topology.allEvents });
      if (!found || found.time >= since) high = middle;
      else low = found.seq + 1;
    }
    return low;
  }

  return {
    /** Up to `limit` of the tenant's events matching `query`, in stream order; ends at the log's end. */
    async *read(tenantId: string, query: FeedQuery): AsyncGenerator<FeedEvent> {
      const subject = subjectOf(tenantId, query.aggregate);
      let seq = Math.max(1, (query.afterSeq ?? 0) + 1, query.since ? await firstSeqSince(query.since) : 1);
      for (let sent = 0; sent < query.limit; sent++) {
        const found = await jsm.direct.getMessage(stream, { seq, next_by_subj: subject });
        if (!found || (query.until && found.time > query.until)) return;
        yield { seq: found.seq, time: found.time, type: found.header.get(EVENT_HEADERS.type), json: found.string() };
        seq = found.seq + 1;
      }
    },

    /**
     * The tenant's events after `afterSeq` (or from now on), as they are stored, until `signal`
     * aborts. Each follow has an ephemeral consumer of its own, deleted when it ends; one left
     * behind (the process died before it could delete it) goes by itself after `inactiveMs`
     * without a pull. A consumer lost with a NATS restart is opened again after the last event sent.
     */
    async *follow(tenantId: string, afterSeq: number | undefined, signal: AbortSignal): AsyncGenerator<FeedEvent> {
      let lastSeq = afterSeq ?? (await jsm.streams.info(stream)).state.last_seq;
      while (!signal.aborted) {
        const { name } = await openFeedConsumer(tenantId, lastSeq, signal);
        try {
          const consumer = await js.consumers.get(stream, name);
          const messages = await consumer.consume({ max_messages: 256, abort_on_missing_resource: true, ...CONSUME_PULLS });
          const stop = () => messages.stop();
          signal.addEventListener("abort", stop, { once: true });
          // Aborted while the consumer was being (re-)opened: the listener came too late to stop it.
          if (signal.aborted) stop();
          try {
            for await (const message of messages) {
              lastSeq = message.seq;
              yield { seq: message.seq, time: new Date(message.info.timestampNanos / 1e6), type: message.headers?.get(EVENT_HEADERS.type) ?? "", json: message.string() };
            }
          } catch {
            // The consumer is gone (a NATS restart lost it): a fresh one follows from after the last event sent.
          } finally {
            signal.removeEventListener("abort", stop);
            messages.stop();
          }
        } finally {
          await jsm.consumers.delete(stream, name).catch(() => false);
        }
        await sleep(REOPEN_PAUSE_MS, undefined, { signal }).catch(() => undefined);
      }
    },
  };
}

export type TenantFeed = ReturnType<typeof createTenantFeed>;
