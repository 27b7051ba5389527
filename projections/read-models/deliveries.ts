import { sql } from "slonik";
import { z } from "zod";
import type { Tx } from "../db.js";
import { deliveryEventTypes, foldDeliveries, type DeliveryChanges, type DeliveryEnvelope, type DeliveryRow } from "./deliveries-fold.js";
import { addReplayCounts } from "./replays.js";
import type { BatchReadModel, Sequenced } from "./shared.js";

/**
 * Deliveries, their attempts and the DLQ, applied a run of events at a time: the stored rows of
 * the deliveries the run names are read (under the checkpoint lock, so nothing else writes them),
 * the run is folded in memory (`deliveries-fold.ts`, each event guarded by `last_seq < seq`), and
 * each table is written with one set-based statement per kind. Queries: `deliveries-queries.ts`.
 * A replayed delivery (`delivery.replayed`) leaves the DLQ, is pending again with its `replay_id`,
 * and counts towards that replay's progress as it succeeds or dies again (`replays.ts`).
 */
export { deliveryEventTypes };

const Stored = z.object({
  id: z.string(),
  tenantId: z.string(),
  messageId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: z.enum(["pending", "retrying", "succeeded", "dead"]),
  attempts: z.number(),
  lastStatusCode: z.number().nullable(),
  lastErrorClass: z.string().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  succeededAt: z.string().nullable(),
  deadAt: z.string().nullable(),
  deadReason: z.string().nullable(),
  lastSeq: z.number(),
  replayId: z.string().nullable(),
});

/** Timestamps are read as text, which `::timestamptz` reads back exactly (the ISO parser keeps only ms). */
async function loadDeliveries(tx: Tx, ids: readonly string[]): Promise<Map<string, DeliveryRow>> {
  const rows = await tx.any(sql.type(Stored)`
    SELECT id, tenant_id AS "tenantId", message_id AS "messageId", endpoint_id AS "endpointId", event_type AS "eventType",
           status, attempts, last_status_code AS "lastStatusCode", last_error_class AS "lastErrorClass", last_error AS "lastError",
           next_attempt_at::text AS "nextAttemptAt", created_at::text AS "createdAt", updated_at::text AS "updatedAt",
           succeeded_at::text AS "succeededAt", dead_at::text AS "deadAt", dead_reason AS "deadReason",
           last_seq AS "lastSeq", replay_id AS "replayId"
    FROM deliveries WHERE id = ANY(${sql.array(ids, "text")})`);
  return new Map(rows.map((r) => [r.id, r]));
}

async function writeDeliveries(tx: Tx, rows: DeliveryChanges["deliveries"]) {
  if (rows.length === 0) return;
  const tuples = rows.map((r) => [
    r.id,
    r.tenantId,
    r.messageId,
    r.endpointId,
    r.eventType,
    r.status,
    r.attempts,
    r.lastStatusCode,
    r.lastErrorClass,
    r.lastError,
    r.nextAttemptAt,
    r.createdAt,
    r.updatedAt,
    r.succeededAt,
    r.deadAt,
    r.deadReason,
    r.lastSeq,
    r.replayId,
  ]);
  const types = [
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int4",
    "int4",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "int8",
    "text",
  ];
  await tx.query(sql.unsafe`
    INSERT INTO deliveries (id, tenant_id, message_id, endpoint_id, event_type, status, attempts, last_status_code,
                            last_error_class, last_error, next_attempt_at, created_at, updated_at, succeeded_at, dead_at,
                            dead_reason, last_seq, replay_id)
    SELECT * FROM ${sql.unnest(tuples, types)}
    ON CONFLICT (id) DO UPDATE SET
      status = EXCLUDED.status, attempts = EXCLUDED.attempts, last_status_code = EXCLUDED.last_status_code,
      last_error_class = EXCLUDED.last_error_class, last_error = EXCLUDED.last_error, next_attempt_at = EXCLUDED.next_attempt_at,
      updated_at = EXCLUDED.updated_at, succeeded_at = EXCLUDED.succeeded_at, dead_at = EXCLUDED.dead_at,
      dead_reason = EXCLUDED.dead_reason, last_seq = EXCLUDED.last_seq, replay_id = EXCLUDED.replay_id
    WHERE deliveries.last_seq < EXCLUDED.last_seq AND deliveries.tenant_id = EXCLUDED.tenant_id`);
}

async function writeAttempts(tx: Tx, { attempts, outcomes }: DeliveryChanges) {
  if (attempts.length > 0) {
    const tuples = attempts.map((a) => [
      a.deliveryId,
      a.attempt,
      a.tenantId,
      a.startedAt,
      a.latencyMs,
      a.statusCode,
      a.errorClass,
      a.error,
      a.responseSnippet,
      a.outcome,
    ]);
    await tx.query(sql.unsafe`
      INSERT INTO delivery_attempts (delivery_id, attempt, tenant_id, started_at, latency_ms, status_code,
                                     error_class, error, response_snippet, outcome)
      SELECT * FROM ${sql.unnest(tuples, ["text", "int4", "text", "timestamptz", "int4", "int4", "text", "text", "text", "text"])}
      ON CONFLICT (delivery_id, attempt) DO UPDATE SET
        started_at = EXCLUDED.started_at, latency_ms = EXCLUDED.latency_ms, status_code = EXCLUDED.status_code,
        error_class = EXCLUDED.error_class, error = EXCLUDED.error, response_snippet = EXCLUDED.response_snippet,
        outcome = EXCLUDED.outcome`);
  }
  if (outcomes.length > 0) {
    const tuples = outcomes.map((o) => [o.deliveryId, o.attempt, o.outcome]);
    await tx.query(sql.unsafe`
      UPDATE delivery_attempts a SET outcome = u.outcome
      FROM ${sql.unnest(tuples, ["text", "int4", "text"])} AS u(delivery_id, attempt, outcome)
      WHERE a.delivery_id = u.delivery_id AND a.attempt = u.attempt`);
  }
}

async function writeDlq(tx: Tx, { dlqDeletes, dlqUpserts }: DeliveryChanges) {
  if (dlqDeletes.length > 0) {
    await tx.query(sql.unsafe`DELETE FROM dlq_entries WHERE delivery_id = ANY(${sql.array(dlqDeletes, "text")})`);
  }
  if (dlqUpserts.length === 0) return;
  const tuples = dlqUpserts.map((d) => [d.deliveryId, d.tenantId, d.messageId, d.endpointId, d.eventType, d.errorClass, d.reason, d.attempts, d.deadAt]);
  await tx.query(sql.unsafe`
    INSERT INTO dlq_entries (delivery_id, tenant_id, message_id, endpoint_id, event_type, error_class, reason, attempts, dead_at)
    SELECT * FROM ${sql.unnest(tuples, ["text", "text", "text", "text", "text", "text", "text", "int4", "timestamptz"])}
    ON CONFLICT (delivery_id) DO UPDATE SET
      error_class = EXCLUDED.error_class, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, dead_at = EXCLUDED.dead_at`);
}

async function applyDeliveryEvents(tx: Tx, events: readonly Sequenced<DeliveryEnvelope>[]): Promise<void> {
  if (events.length === 0) return;
  const stored = await loadDeliveries(tx, [...new Set(events.map((e) => e.envelope.aggregateId))]);
  const changes = foldDeliveries(stored, events);
  await writeDeliveries(tx, changes.deliveries);
  await writeAttempts(tx, changes);
  await writeDlq(tx, changes);
  await addReplayCounts(tx, changes.replays);
}

export const deliveriesReadModel: BatchReadModel<(typeof deliveryEventTypes)[number]> = {
  name: "deliveries",
  handles: deliveryEventTypes,
  applyAll: applyDeliveryEvents,
};
