import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import { ParkReason } from "../../contracts/events.js";
import type { Queryable, Tx } from "../db.js";
import { afterCursor, clampLimit, toPage, whereAll, type KnownEnvelope, type Page, type PageRequest, type ReadModel } from "./shared.js";

/** Messages a reactor parked, one row each, from the `parked` aggregate's events. */
export const parkedEventTypes = ["parked.added", "parked.replay_requested", "parked.replayed", "parked.replay_failed"] as const;

export const ParkedStatus = z.enum(["parked", "replaying", "replayed"]);
export type ParkedStatus = z.infer<typeof ParkedStatus>;

export const ParkedRow = z.object({
  id: z.string(),
  tenantId: z.string(),
  reactor: z.string(),
  streamSeq: z.number(),
  subject: z.string(),
  eventType: z.string().nullable(),
  reason: ParkReason,
  failures: z.number(),
  error: z.string(),
  status: ParkedStatus,
  replayError: z.string().nullable(),
  replays: z.number(),
  parkedAt: z.string(),
  replayedAt: z.string().nullable(),
});
export type ParkedRow = z.infer<typeof ParkedRow>;

const ts = (iso: string) => sql.fragment`${iso}::timestamptz`;

async function applyParkedEvent(tx: Tx, e: KnownEnvelope, seq: number): Promise<void> {
  switch (e.type) {
    case "parked.added": {
      const { reactor, streamSeq, subject, eventType, reason, failures, error } = e.data;
      await tx.query(sql.unsafe`
        INSERT INTO parked_messages (id, tenant_id, reactor, stream_seq, subject, event_type, reason, failures, error, status, parked_at, last_seq)
        VALUES (${e.aggregateId}, ${e.tenantId}, ${reactor}, ${streamSeq}, ${subject}, ${eventType ?? null}, ${reason}, ${failures}, ${error},
                'parked', ${ts(e.occurredAt)}, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    }
    case "parked.replay_requested":
      await tx.query(sql.unsafe`
        UPDATE parked_messages SET status = 'replaying', replays = replays + 1, last_seq = ${seq}
        WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}`);
      return;
    case "parked.replayed":
      await tx.query(sql.unsafe`
        UPDATE parked_messages SET status = 'replayed', replay_error = NULL, replayed_at = ${ts(e.occurredAt)}, last_seq = ${seq}
        WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}`);
      return;
    case "parked.replay_failed":
      await tx.query(sql.unsafe`
        UPDATE parked_messages SET status = 'parked', replay_error = ${e.data.error}, last_seq = ${seq}
        WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}`);
      return;
    default:
      return;
  }
}

export const parkedReadModel: ReadModel = { name: "parked_messages", handles: parkedEventTypes, apply: applyParkedEvent };

const columns = sql.fragment`
  id, tenant_id AS "tenantId", reactor, stream_seq AS "streamSeq", subject, event_type AS "eventType", reason, failures, error,
  status, replay_error AS "replayError", replays, parked_at AS "parkedAt", replayed_at AS "replayedAt"`;

export interface ParkedFilter extends PageRequest {
  status?: ParkedStatus;
  reactor?: string;
  tenantId?: string;
}

/** Parked messages of every tenant (an operator's list), newest first; the caller opts in to every tenant's rows. */
export async function listParked(db: Queryable, filter: ParkedFilter = {}): Promise<Page<ParkedRow>> {
  const limit = clampLimit(filter.limit);
  const where: FragmentSqlToken[] = [afterCursor(filter.cursor, "parked_at", "id")];
  if (filter.status) where.push(sql.fragment`status = ${filter.status}`);
  if (filter.reactor) where.push(sql.fragment`reactor = ${filter.reactor}`);
  if (filter.tenantId) where.push(sql.fragment`tenant_id = ${filter.tenantId}`);
  const rows = await db.any(sql.type(ParkedRow)`
    SELECT ${columns} FROM parked_messages WHERE ${whereAll(where)}
    ORDER BY parked_at DESC, id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.parkedAt, id: row.id }));
}

/** One parked message, or null. */
export async function getParked(db: Queryable, id: string): Promise<ParkedRow | null> {
  return db.maybeOne(sql.type(ParkedRow)`SELECT ${columns} FROM parked_messages WHERE id = ${id}`);
}
