import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import type { Queryable } from "../db.js";
import { RoutingView, routingViewSql } from "./messages.js";
import { afterCursor, clampLimit, toPage, whereAll, type Page, type PageRequest } from "./shared.js";

export const DeliveryStatus = z.enum(["pending", "retrying", "succeeded", "dead"]);
export type DeliveryStatus = z.infer<typeof DeliveryStatus>;

/** A delivery as listed; `attempts` is the number of attempts so far. Absent values are `null`. */
export const DeliveryRow = z.object({
  id: z.string(),
  messageId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: DeliveryStatus,
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
});
export type DeliveryRow = z.infer<typeof DeliveryRow>;

/**
 * One attempt; `outcome` is what followed it, recorded in the same event, and null only for an
 * attempt of an older stream whose outcome (its own event then) is not projected yet or was lost.
 */
export const AttemptRow = z.object({
  attempt: z.number(),
  startedAt: z.string(),
  latencyMs: z.number(),
  statusCode: z.number().nullable(),
  errorClass: z.string(),
  error: z.string().nullable(),
  responseSnippet: z.string().nullable(),
  outcome: z.enum(["succeeded", "retry", "dead"]).nullable(),
});
export type AttemptRow = z.infer<typeof AttemptRow>;

/** A delivery with its attempt history (by attempt number) and the routing decision that created it. */
export type DeliveryDetail = Omit<DeliveryRow, "attempts"> & {
  attemptCount: number;
  attempts: AttemptRow[];
  routing: RoutingView | null;
};

export const DlqRow = z.object({
  deliveryId: z.string(),
  messageId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  errorClass: z.string(),
  reason: z.string(),
  attempts: z.number(),
  deadAt: z.string(),
});
export type DlqRow = z.infer<typeof DlqRow>;

/** `since` is inclusive, `until` exclusive (ISO 8601). */
export interface TimeRange {
  since?: string;
  until?: string;
}
export interface DeliveryFilter extends PageRequest, TimeRange {
  status?: DeliveryStatus;
  endpointId?: string;
  eventType?: string;
  messageId?: string;
}
export interface DlqFilter extends PageRequest, TimeRange {
  endpointId?: string;
  eventType?: string;
}

const columns = sql.fragment`
  id, message_id AS "messageId", endpoint_id AS "endpointId", event_type AS "eventType", status, attempts,
  last_status_code AS "lastStatusCode", last_error_class AS "lastErrorClass", last_error AS "lastError",
  next_attempt_at AS "nextAttemptAt", created_at AS "createdAt", updated_at AS "updatedAt",
  succeeded_at AS "succeededAt", dead_at AS "deadAt", dead_reason AS "deadReason"`;

function common(tenantId: string, f: DeliveryFilter | DlqFilter, at: string): FragmentSqlToken[] {
  const where = [sql.fragment`tenant_id = ${tenantId}`];
  if (f.endpointId) where.push(sql.fragment`endpoint_id = ${f.endpointId}`);
  if (f.eventType) where.push(sql.fragment`event_type = ${f.eventType}`);
  if (f.since) where.push(sql.fragment`${sql.identifier([at])} >= ${f.since}::timestamptz`);
  if (f.until) where.push(sql.fragment`${sql.identifier([at])} < ${f.until}::timestamptz`);
  return where;
}

/** The tenant's deliveries, newest first, filtered. */
export async function listDeliveries(db: Queryable, tenantId: string, f: DeliveryFilter = {}): Promise<Page<DeliveryRow>> {
  const limit = clampLimit(f.limit);
  const where = common(tenantId, f, "created_at");
  if (f.status) where.push(sql.fragment`status = ${f.status}`);
  if (f.messageId) where.push(sql.fragment`message_id = ${f.messageId}`);
  where.push(afterCursor(f.cursor, "created_at", "id"));
  const rows = await db.any(sql.type(DeliveryRow)`
    SELECT ${columns} FROM deliveries WHERE ${whereAll(where)}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}

/** One delivery of the tenant with attempts and routing, or null. */
export async function getDelivery(db: Queryable, tenantId: string, id: string): Promise<DeliveryDetail | null> {
  const row = await db.maybeOne(sql.type(DeliveryRow.extend({ routing: RoutingView.nullable() }))`
    SELECT ${columns}, (SELECT ${routingViewSql} FROM messages m WHERE m.id = d.message_id AND m.tenant_id = d.tenant_id) AS routing
    FROM deliveries d WHERE d.tenant_id = ${tenantId} AND d.id = ${id}`);
  if (!row) return null;
  const attempts = await db.any(sql.type(AttemptRow)`
    SELECT attempt, started_at AS "startedAt", latency_ms AS "latencyMs", status_code AS "statusCode",
           error_class AS "errorClass", error, response_snippet AS "responseSnippet", outcome
    FROM delivery_attempts WHERE tenant_id = ${tenantId} AND delivery_id = ${id} ORDER BY attempt`);
  const { attempts: attemptCount, ...rest } = row;
  return { ...rest, attemptCount, attempts: [...attempts] };
}

/** The tenant's dead-lettered deliveries, newest first by `deadAt`. */
export async function listDlq(db: Queryable, tenantId: string, f: DlqFilter = {}): Promise<Page<DlqRow>> {
  const limit = clampLimit(f.limit);
  const where = [...common(tenantId, f, "dead_at"), afterCursor(f.cursor, "dead_at", "delivery_id")];
  const rows = await db.any(sql.type(DlqRow)`
    SELECT delivery_id AS "deliveryId", message_id AS "messageId", endpoint_id AS "endpointId",
           event_type AS "eventType", error_class AS "errorClass", reason, attempts, dead_at AS "deadAt"
    FROM dlq_entries WHERE ${whereAll(where)}
    ORDER BY dead_at DESC, delivery_id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.deadAt, id: row.deliveryId }));
}

/** Dead-lettered deliveries of every tenant: the `webhook_dlq_size` gauge, read on each scrape. */
export async function countDlq(db: Queryable): Promise<number> {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`SELECT count(*)::int AS count FROM dlq_entries`);
}
