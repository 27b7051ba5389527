import { sql } from "slonik";
import { z } from "zod";
import { RoutingCandidate } from "../../contracts/events.js";
import type { Queryable, Tx } from "../db.js";
import type { KnownEnvelope, ReadModel } from "./shared.js";

export const messageEventTypes = ["message.received", "routing.decided"] as const;

/** The routing decision that created a message's deliveries. */
export const RoutingView = z.object({
  strategy: z.string(),
  registrySeq: z.number(),
  candidates: z.array(RoutingCandidate),
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

export async function applyMessageEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  switch (envelope.type) {
    case "message.received": {
      const d = envelope.data;
      await tx.query(sql.unsafe`
        INSERT INTO messages (id, tenant_id, event_type, event_id, payload, received_at, stream_seq, last_seq)
        VALUES (${envelope.aggregateId}, ${envelope.tenantId}, ${d.eventType}, ${d.eventId ?? null},
                ${sql.jsonb(d.payload as Parameters<typeof sql.jsonb>[0])}, ${envelope.occurredAt}::timestamptz, ${seq}, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    }
    case "routing.decided": {
      const { strategy, registrySeq, candidates, targets } = envelope.data;
      await tx.query(sql.unsafe`
        UPDATE messages
        SET routing = ${sql.jsonb({ strategy, registrySeq, candidates, targets })},
            routed_at = ${envelope.occurredAt}::timestamptz, last_seq = ${seq}
        WHERE id = ${envelope.aggregateId} AND tenant_id = ${envelope.tenantId} AND last_seq < ${seq}`);
      return;
    }
    default:
      return;
  }
}

export const messagesReadModel: ReadModel = { name: "messages", handles: messageEventTypes, apply: applyMessageEvent };

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
