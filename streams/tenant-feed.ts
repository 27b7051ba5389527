import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { AggregateType } from "../contracts/common.js";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { CONSUME_PULLS, watchConsume } from "./consumers.js";
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
}

/**
 * One tenant's events, straight from the log: what auditors export and operators tail. Only that
 * tenant's subjects are ever read, so no filter in the caller can reach another tenant's events.
 */
export function createTenantFeed({ js, jsm, topology }: TenantFeedDeps) {
  const { stream } = topology;
  const subjectOf = (tenantId: string, aggregate?: FeedQuery["aggregate"]) =>
    aggregate ? topology.aggregateSubject(tenantId, aggregate.type, aggregate.id) : topology.tenantEvents(tenantId);

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

    /** The tenant's events after `afterSeq` (or from now on), as they are stored, until `signal` aborts. */
    async *follow(tenantId: string, afterSeq: number | undefined, signal: AbortSignal): AsyncGenerator<FeedEvent> {
      let lastSeq = afterSeq ?? (await jsm.streams.info(stream)).state.last_seq;
      for (;;) {
        const consumer = await js.consumers.get(stream, {
          filter_subjects: topology.tenantEvents(tenantId),
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: lastSeq + 1,
        });
        const messages = await consumer.consume({ max_messages: 256, ...CONSUME_PULLS });
        const watch = watchConsume(messages);
        const stop = () => messages.stop();
        signal.addEventListener("abort", stop, { once: true });
        // Aborted while the consumer was being (re-)opened: the listener came too late to stop it.
        if (signal.aborted) stop();
        try {
          for await (const message of messages) {
            lastSeq = message.seq;
            yield { seq: message.seq, time: new Date(message.info.timestampNanos / 1e6), type: message.headers?.get(EVENT_HEADERS.type) ?? "", json: message.string() };
          }
        } finally {
          signal.removeEventListener("abort", stop);
          messages.stop();
          // Gone with its client: the server would keep an ordered consumer 5 minutes past its last
          // pull (the client's fixed inactive threshold), one per connection that ever came.
          await consumer.delete().catch(() => false);
        }
        // The client recreated the consumer after a server restart: a fresh one from after the last sent.
        if (signal.aborted || !watch.recreated()) return;
      }
    },
  };
}

export type TenantFeed = ReturnType<typeof createTenantFeed>;
