import { sql } from "slonik";
import type { Tx } from "../db.js";
import { countReplayed, countReplayOutcome } from "./replays.js";
import type { EnvelopeOf, KnownEnvelope, ReadModel } from "./shared.js";

/**
 * Deliveries, their attempts and the DLQ. Every change to a delivery first updates its row guarded
 * by `last_seq < seq`; the attempt and DLQ rows are written only when that update applied, so an
 * event applied twice (or an older one applied late) changes nothing. Queries: `deliveries-queries.ts`.
 * A replayed delivery (`delivery.replayed`) leaves the DLQ, is pending again with its `replay_id`,
 * and counts towards that replay's progress as it succeeds or dies again (`replays.ts`).
 */
export const deliveryEventTypes = [
  "delivery.scheduled",
  "delivery.attempted",
  "delivery.succeeded",
  "delivery.retry_scheduled",
  "delivery.dead_lettered",
  "delivery.replayed",
] as const;

const ts = (iso: string) => sql.fragment`${iso}::timestamptz`;

/** Inserts the delivery, or starts a new series on a replay; returns whether it applied. */
async function schedule(tx: Tx, e: EnvelopeOf<"delivery.scheduled">, seq: number): Promise<boolean> {
  const d = e.data;
  const row = await tx.maybeOne(sql.unsafe`
    INSERT INTO deliveries (id, tenant_id, message_id, endpoint_id, event_type, status, attempts,
                            created_at, updated_at, last_seq)
    VALUES (${e.aggregateId}, ${e.tenantId}, ${d.messageId}, ${d.endpointId}, ${d.eventType}, 'pending', 0,
            ${ts(e.occurredAt)}, ${ts(e.occurredAt)}, ${seq})
    ON CONFLICT (id) DO UPDATE SET
      status = 'pending', next_attempt_at = NULL, succeeded_at = NULL, dead_at = NULL, dead_reason = NULL,
      updated_at = EXCLUDED.updated_at, last_seq = EXCLUDED.last_seq
    WHERE deliveries.last_seq < EXCLUDED.last_seq AND deliveries.tenant_id = EXCLUDED.tenant_id
    RETURNING id`);
  if (row) await tx.query(sql.unsafe`DELETE FROM dlq_entries WHERE delivery_id = ${e.aggregateId}`);
  return row !== null;
}

/** Applies SET clauses to the delivery when `seq` is newer than its row; returns whether it applied. */
async function updateDelivery(tx: Tx, e: KnownEnvelope, seq: number, set: ReturnType<typeof sql.fragment>[]) {
  const all = [...set, sql.fragment`updated_at = ${ts(e.occurredAt)}`, sql.fragment`last_seq = ${seq}`];
  const row = await tx.maybeOne(sql.unsafe`
    UPDATE deliveries SET ${sql.join(all, sql.fragment`, `)}
    WHERE id = ${e.aggregateId} AND tenant_id = ${e.tenantId} AND last_seq < ${seq}
    RETURNING id`);
  return row !== null;
}

async function setOutcome(tx: Tx, deliveryId: string, attempt: number, outcome: "succeeded" | "retry" | "dead") {
  await tx.query(sql.unsafe`
    UPDATE delivery_attempts SET outcome = ${outcome} WHERE delivery_id = ${deliveryId} AND attempt = ${attempt}`);
}

async function attempted(tx: Tx, e: EnvelopeOf<"delivery.attempted">, seq: number) {
  const d = e.data;
  const applied = await updateDelivery(tx, e, seq, [
    sql.fragment`attempts = ${d.attempt}`,
    sql.fragment`last_status_code = ${d.statusCode ?? null}`,
    sql.fragment`last_error_class = ${d.errorClass}`,
    sql.fragment`last_error = ${d.error ?? null}`,
  ]);
  if (!applied) return;
  // DO UPDATE: an attempt number seen again (a replay restarting its series) takes the newer facts.
  await tx.query(sql.unsafe`
    INSERT INTO delivery_attempts (delivery_id, attempt, tenant_id, started_at, latency_ms, status_code,
                                   error_class, error, response_snippet, outcome)
    VALUES (${e.aggregateId}, ${d.attempt}, ${e.tenantId}, ${ts(d.startedAt)}, ${d.latencyMs}, ${d.statusCode ?? null},
            ${d.errorClass}, ${d.error ?? null}, ${d.responseSnippet ?? null}, NULL)
    ON CONFLICT (delivery_id, attempt) DO UPDATE SET
      started_at = EXCLUDED.started_at, latency_ms = EXCLUDED.latency_ms, status_code = EXCLUDED.status_code,
      error_class = EXCLUDED.error_class, error = EXCLUDED.error, response_snippet = EXCLUDED.response_snippet,
      outcome = NULL`);
}

async function deadLettered(tx: Tx, e: EnvelopeOf<"delivery.dead_lettered">, seq: number) {
  const d = e.data;
  const applied = await updateDelivery(tx, e, seq, [
    sql.fragment`status = 'dead'`,
    sql.fragment`next_attempt_at = NULL`,
    sql.fragment`dead_at = ${ts(e.occurredAt)}`,
    sql.fragment`dead_reason = ${d.reason}`,
    sql.fragment`last_error_class = ${d.errorClass}`,
  ]);
  if (!applied) return;
  await setOutcome(tx, e.aggregateId, d.attempt, "dead");
  await countReplayOutcome(tx, e.aggregateId, "failed");
  await tx.query(sql.unsafe`
    INSERT INTO dlq_entries (delivery_id, tenant_id, message_id, endpoint_id, event_type, error_class, reason,
                             attempts, dead_at)
    SELECT id, tenant_id, message_id, endpoint_id, event_type, ${d.errorClass}, ${d.reason}, ${d.attempt},
           ${ts(e.occurredAt)}
    FROM deliveries WHERE id = ${e.aggregateId}
    ON CONFLICT (delivery_id) DO UPDATE SET
      error_class = EXCLUDED.error_class, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts,
      dead_at = EXCLUDED.dead_at`);
}

/** A new attempt series: out of the DLQ, pending again, its attempts kept (numbers go on). */
async function replayed(tx: Tx, e: EnvelopeOf<"delivery.replayed">, seq: number) {
  const applied = await updateDelivery(tx, e, seq, [
    sql.fragment`status = 'pending'`,
    sql.fragment`replay_id = ${e.data.replayId}`,
    sql.fragment`next_attempt_at = NULL`,
    sql.fragment`succeeded_at = NULL`,
    sql.fragment`dead_at = NULL`,
    sql.fragment`dead_reason = NULL`,
  ]);
  if (!applied) return;
  await tx.query(sql.unsafe`DELETE FROM dlq_entries WHERE delivery_id = ${e.aggregateId}`);
  await countReplayed(tx, e.tenantId, e.data.replayId);
}

export async function applyDeliveryEvent(tx: Tx, e: KnownEnvelope, seq: number): Promise<void> {
  switch (e.type) {
    case "delivery.scheduled":
      await schedule(tx, e, seq);
      return;
    case "delivery.attempted":
      return attempted(tx, e, seq);
    case "delivery.succeeded": {
      const ok = await updateDelivery(tx, e, seq, [
        sql.fragment`status = 'succeeded'`,
        sql.fragment`next_attempt_at = NULL`,
        sql.fragment`succeeded_at = ${ts(e.occurredAt)}`,
        sql.fragment`last_status_code = ${e.data.statusCode}`,
      ]);
      if (!ok) return;
      await setOutcome(tx, e.aggregateId, e.data.attempt, "succeeded");
      await countReplayOutcome(tx, e.aggregateId, "succeeded");
      return;
    }
    case "delivery.retry_scheduled": {
      const ok = await updateDelivery(tx, e, seq, [
        sql.fragment`status = 'retrying'`,
        sql.fragment`next_attempt_at = ${ts(e.data.nextAttemptAt)}`,
        sql.fragment`last_error_class = ${e.data.errorClass}`,
      ]);
      if (ok) await setOutcome(tx, e.aggregateId, e.data.attempt, "retry");
      return;
    }
    case "delivery.dead_lettered":
      return deadLettered(tx, e, seq);
    case "delivery.replayed":
      return replayed(tx, e, seq);
    default:
      return;
  }
}

export const deliveriesReadModel: ReadModel = {
  name: "deliveries",
  handles: deliveryEventTypes,
  apply: applyDeliveryEvent,
};
