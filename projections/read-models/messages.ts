import { sql } from "slonik";
import { z } from "zod";
import { CandidateSet, RoutingCandidate } from "../../contracts/events.js";
import type { Queryable, Tx } from "../db.js";
import type { BatchReadModel, EnvelopeOf, Sequenced } from "./shared.js";

export const messageEventTypes = ["message.received", "routing.decided"] as const;

/** The routing decision that created a message's deliveries. */
export const RoutingView = z.object({
  strategy: z.string(),
  registrySeq: z.number(),
  candidates: z.array(RoutingCandidate),
  /** Absent in rows projected before `routing.decided` version 2: their `candidates` is the whole set. */
  candidateSet: CandidateSet.optional(),
  targets: z.array(z.object({ endpointId: z.string(), deliveryId: z.string() })),
  decidedAt: z.string(),
});
export type RoutingView = z.infer<typeof RoutingView>;

export const MessageRow = z.object({
  id: z.string(),
  eventType: z.string(),
  eventId: z.string().nullable(),
  payload: z.record(z.unknown()),
  receivedAt: z.string(),
  streamSeq: z.number(),
  routing: RoutingView.nullable(),
});
export type MessageRow = z.infer<typeof MessageRow>;

type MessageEnvelope = EnvelopeOf<(typeof messageEventTypes)[number]>;

/** What the fold needs of a stored message: whose it is and the last event applied to it. */
export interface StoredMessage {
  tenantId: string;
  lastSeq: number;
}

/** A message created by the run, with the routing folded in when the run routed it too. */
export interface NewMessage {
  id: string;
  tenantId: string;
  eventType: string;
  eventId: string | null;
  payload: unknown;
  receivedAt: string;
  streamSeq: number;
  routing: unknown;
  routedAt: string | null;
  lastSeq: number;
}

/** The routing of a message stored before the run. */
export interface RoutingUpdate {
  id: string;
  routing: unknown;
  routedAt: string;
  lastSeq: number;
}

/**
 * Folds a run of message events in stream order, as applying them one by one would: a received
 * message is created once (a second `message.received` changes nothing); a routing decision
 * applies to a message of the same tenant whose last event is older.
 */
export function foldMessages(stored: ReadonlyMap<string, StoredMessage>, events: readonly Sequenced<MessageEnvelope>[]) {
  const rows = new Map<string, StoredMessage>(stored);
  const created = new Map<string, NewMessage>();
  const routed = new Map<string, RoutingUpdate>();
  for (const { envelope: e, seq } of events) {
    const id = e.aggregateId;
    const row = rows.get(id);
    if (e.type === "message.received") {
      if (row) continue;
      const d = e.data;
      const message: NewMessage = {
        id,
        tenantId: e.tenantId,
        eventType: d.eventType,
        eventId: d.eventId ?? null,
        payload: d.payload,
        receivedAt: e.occurredAt,
        streamSeq: seq,
        routing: null,
        routedAt: null,
        lastSeq: seq,
      };
      created.set(id, message);
      rows.set(id, message);
      continue;
    }
    if (!row || row.tenantId !== e.tenantId || row.lastSeq >= seq) continue;
    const { strategy, registrySeq, candidates, candidateSet, targets } = e.data;
    const change = { routing: { strategy, registrySeq, candidates, candidateSet, targets }, routedAt: e.occurredAt, lastSeq: seq };
    const fresh = created.get(id);
    if (fresh) Object.assign(fresh, change);
    else {
      routed.set(id, { id, ...change });
      rows.set(id, { tenantId: row.tenantId, lastSeq: seq });
    }
  }
  return { created: [...created.values()], routed: [...routed.values()] };
}

const Stored = z.object({ id: z.string(), tenantId: z.string(), lastSeq: z.number() });

async function applyMessageEvents(tx: Tx, events: readonly Sequenced<MessageEnvelope>[]): Promise<void> {
  if (events.length === 0) return;
  const ids = [...new Set(events.map((e) => e.envelope.aggregateId))];
  const rows = await tx.any(sql.type(Stored)`
    SELECT id, tenant_id AS "tenantId", last_seq AS "lastSeq" FROM messages WHERE id = ANY(${sql.array(ids, "text")})`);
  const { created, routed } = foldMessages(new Map(rows.map((r) => [r.id, r])), events);
  if (created.length > 0) {
    const tuples = created.map((m) => [
      m.id,
      m.tenantId,
      m.eventType,
      m.eventId,
      JSON.stringify(m.payload),
      m.receivedAt,
      m.streamSeq,
      m.routing === null ? null : JSON.stringify(m.routing),
      m.routedAt,
      m.lastSeq,
    ]);
    await tx.query(sql.unsafe`
      INSERT INTO messages (id, tenant_id, event_type, event_id, payload, received_at, stream_seq, routing, routed_at, last_seq)
      SELECT * FROM ${sql.unnest(tuples, ["text", "text", "text", "text", "jsonb", "timestamptz", "int8", "jsonb", "timestamptz", "int8"])}
      ON CONFLICT (id) DO NOTHING`);
  }
  if (routed.length > 0) {
    const tuples = routed.map((r) => [r.id, JSON.stringify(r.routing), r.routedAt, r.lastSeq]);
    await tx.query(sql.unsafe`
      UPDATE messages m SET routing = u.routing, routed_at = u.routed_at, last_seq = u.last_seq
      FROM ${sql.unnest(tuples, ["text", "jsonb", "timestamptz", "int8"])} AS u(id, routing, routed_at, last_seq)
      WHERE m.id = u.id AND m.last_seq < u.last_seq`);
  }
}

export const messagesReadModel: BatchReadModel<(typeof messageEventTypes)[number]> = {
  name: "messages",
  handles: messageEventTypes,
  applyAll: applyMessageEvents,
};

/** The SQL expression building a {@link RoutingView} from a `messages` row aliased `m`. */
export const routingViewSql = sql.fragment`
  CASE WHEN m.routing IS NULL THEN NULL
  ELSE m.routing || jsonb_build_object('decidedAt', to_char(m.routed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
  END`;

/** One message of the tenant with its routing decision, or null. */
export async function getMessage(db: Queryable, tenantId: string, id: string): Promise<MessageRow | null> {
  return db.maybeOne(sql.type(MessageRow)`
    SELECT m.id, m.event_type AS "eventType", m.event_id AS "eventId", m.payload, m.received_at AS "receivedAt",
           m.stream_seq AS "streamSeq", ${routingViewSql} AS routing
    FROM messages m WHERE m.tenant_id = ${tenantId} AND m.id = ${id}`);
}
