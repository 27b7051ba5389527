import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import type { Queryable, Tx } from "../db.js";
import type { TimeRange } from "./deliveries-queries.js";
import type { ReplayCounts } from "./deliveries-fold.js";
import { whereAll, type KnownEnvelope, type ReadModel } from "./shared.js";

/**
 * DLQ replays: one row per replay request, built from the replay's own events. The counters that
 * follow its deliveries (`replayed`, `succeeded`, `failed`) are moved by the deliveries read model
 * through {@link addReplayCounts}, only for the delivery events it applied, so an event applied
 * twice counts once.
 */
export const replayEventTypes = ["replay.requested", "replay.completed", "replay.failed"] as const;

export const ReplayStatus = z.enum(["pending", "running", "completed", "failed"]);
export type ReplayStatus = z.infer<typeof ReplayStatus>;

export const ReplayRow = z.object({
  id: z.string(),
  status: ReplayStatus,
  requested: z.number(),
  replayed: z.number(),
  skipped: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  reason: z.string().nullable(),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
});
export type ReplayRow = z.infer<typeof ReplayRow>;

const ts = (iso: string) => sql.fragment`${iso}::timestamptz`;

async function applyReplayEvent(tx: Tx, e: KnownEnvelope, seq: number): Promise<void> {
  switch (e.type) {
    case "replay.requested":
      await tx.query(sql.unsafe`
        INSERT INTO replays (id, tenant_id, status, requested, created_at, last_seq)
        VALUES (${e.aggregateId}, ${e.tenantId}, 'pending', ${e.data.deliveryIds.length}, ${ts(e.occurredAt)}, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    case "replay.completed":
      await tx.query(sql.unsafe`
        UPDATE replays SET status = 'completed', replayed = ${e.data.replayed.length}, skipped = ${e.data.skipped},
                           completed_at = ${ts(e.occurredAt)}, last_seq = ${seq}
        WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}`);
      return;
    case "replay.failed":
      await tx.query(sql.unsafe`
        UPDATE replays SET status = 'failed', reason = ${e.data.reason}, completed_at = ${ts(e.occurredAt)}, last_seq = ${seq}
        WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}`);
      return;
    default:
      return;
  }
}

export const replaysReadModel: ReadModel = { name: "replays", handles: replayEventTypes, apply: applyReplayEvent };

/**
 * Moves replay counters by what a run of delivery events did: `replayed` (a delivery scheduled again
 * by the replay, which is then running) and the outcomes of the deliveries whose current series the
 * replay started. One statement for every replay the run touched.
 */
export async function addReplayCounts(tx: Tx, counts: readonly ReplayCounts[]): Promise<void> {
  if (counts.length === 0) return;
  const tuples = counts.map((c) => [c.replayId, c.tenantId, c.replayed, c.succeeded, c.failed]);
  await tx.query(sql.unsafe`
    UPDATE replays r SET replayed = r.replayed + u.replayed, succeeded = r.succeeded + u.succeeded, failed = r.failed + u.failed,
                         status = CASE WHEN u.replayed > 0 AND r.status = 'pending' THEN 'running' ELSE r.status END
    FROM ${sql.unnest(tuples, ["text", "text", "int4", "int4", "int4"])} AS u(id, tenant_id, replayed, succeeded, failed)
    WHERE r.id = u.id AND r.tenant_id = u.tenant_id`);
}

/** One replay of the tenant, or null (another tenant's id is null too). */
export async function getReplay(db: Queryable, tenantId: string, id: string): Promise<ReplayRow | null> {
  return db.maybeOne(sql.type(ReplayRow)`
    SELECT id, status, requested, replayed, skipped, succeeded, failed, reason,
           created_at AS "createdAt", completed_at AS "completedAt"
    FROM replays WHERE tenant_id = ${tenantId} AND id = ${id}`);
}

/** The tenant's replays not yet completed or failed: what its `maxReplaysInFlight` quota counts. */
export async function countReplaysInFlight(db: Queryable, tenantId: string): Promise<number> {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`
    SELECT count(*)::int4 AS count FROM replays WHERE tenant_id = ${tenantId} AND status IN ('pending', 'running')`);
}

/** Which dead deliveries a replay filter names: the DLQ's own filters (`since`/`until` over `dead_at`). */
export interface DlqSelection extends TimeRange {
  endpointId?: string;
  eventType?: string;
}

/**
 * The ids of the tenant's dead-lettered deliveries that `filter` selects, oldest death first, at
 * most `max + 1` of them (so a caller can tell "more than max" from "exactly max").
 */
export async function selectDeadDeliveryIds(db: Queryable, tenantId: string, filter: DlqSelection, max: number): Promise<string[]> {
  const where: FragmentSqlToken[] = [sql.fragment`tenant_id = ${tenantId}`];
  if (filter.endpointId) where.push(sql.fragment`endpoint_id = ${filter.endpointId}`);
  if (filter.eventType) where.push(sql.fragment`event_type = ${filter.eventType}`);
  if (filter.since) where.push(sql.fragment`dead_at >= ${filter.since}::timestamptz`);
  if (filter.until) where.push(sql.fragment`dead_at < ${filter.until}::timestamptz`);
  const ids = await db.anyFirst(sql.type(z.object({ id: z.string() }))`
    SELECT delivery_id AS id FROM dlq_entries WHERE ${whereAll(where)}
    ORDER BY dead_at, delivery_id LIMIT ${max + 1}`);
  return [...ids];
}
