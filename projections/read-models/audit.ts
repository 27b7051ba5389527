import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import { Actor } from "../../contracts/common.js";
import { redactActorId, redactObject } from "../../domain/redaction/redact.js";
import type { Queryable, Tx } from "../db.js";
import type { TimeRange } from "./deliveries-queries.js";
import { afterCursor, clampLimit, toPage, whereAll, type KnownEnvelope, type Page, type PageRequest, type ReadModel } from "./shared.js";

/**
 * Every registry-changing event (inbound sources and secret rotations included), every test send (a
 * real outbound request), every DLQ replay and every replay of a parked message is audited: who
 * did what, when, with which request id. The deliveries a replay names are many: the audit keeps
 * their count, not the ids. `changes` never holds a secret, encrypted or not, and goes through
 * the redaction module (emails, tokens, credentials in URLs, IP addresses) before it is stored.
 * The actor id keeps who acted without an operator's email: `jwt:<iss>:<email>` is stored as
 * `jwt:<iss>:[REDACTED:email:<digest>]` (`redactActorId`), and the `actorId` filter maps alike.
 */
export const auditEventTypes = [
  "tenant.created",
  "tenant.limits_set",
  "tenant.test_sent",
  "apikey.created",
  "apikey.revoked",
  "endpoint.registered",
  "endpoint.updated",
  "endpoint.disabled",
  "endpoint.deleted",
  "endpoint.secret_rotated",
  "endpoint.test_sent",
  "replay.requested",
  "replay.completed",
  "replay.failed",
  "source.created",
  "source.updated",
  "source.deleted",
  "parked.replay_requested",
] as const;

/** Fields never copied into `changes`, even though events hold them only encrypted or hashed. */
const HIDDEN = new Set(["secret", "keyHash"]);

export const AuditRow = z.object({
  id: z.string(),
  occurredAt: z.string(),
  actor: Actor,
  action: z.string(),
  aggregateType: z.string(),
  aggregateId: z.string(),
  requestId: z.string(),
  changes: z.record(z.unknown()),
});
export type AuditRow = z.infer<typeof AuditRow>;

const handled = new Set<string>(auditEventTypes);

/** What an audit row says of a secret an event set or changed: that it did, never its value. */
export const SECRET_CHANGED = "[changed]";

/**
 * What an audit row shows of an event: its data without hidden fields, replays' id lists as counts;
 * redacted; a secret set or changed shows as {@link SECRET_CHANGED}.
 */
export function auditChanges(e: KnownEnvelope): Record<string, unknown> {
  const changes = redactObject(changesOf(e));
  return "secret" in (e.data as object) ? { ...changes, secret: SECRET_CHANGED } : changes;
}

function changesOf(e: KnownEnvelope): Record<string, unknown> {
  if (e.type === "replay.requested") {
    const { selection, deliveryIds } = e.data;
    return { selection: "filter" in selection ? selection : { deliveryIds: selection.deliveryIds.length }, requested: deliveryIds.length };
  }
  if (e.type === "replay.completed") return { replayed: e.data.replayed.length, skipped: e.data.skipped };
  return Object.fromEntries(Object.entries(e.data as object).filter(([key]) => !HIDDEN.has(key)));
}

export async function applyAuditEvent(tx: Tx, e: KnownEnvelope, _seq: number): Promise<void> {
  if (!handled.has(e.type)) return;
  const changes = auditChanges(e);
  await tx.query(sql.unsafe`
    INSERT INTO audit_log (event_id, tenant_id, occurred_at, actor_kind, actor_id, action, aggregate_type,
                           aggregate_id, request_id, changes)
    VALUES (${e.id}, ${e.tenantId}, ${e.occurredAt}::timestamptz, ${e.actor.kind}, ${redactActorId(e.actor.id)}, ${e.type},
            ${e.aggregateType}, ${e.aggregateId}, ${e.correlationId}, ${sql.jsonb(changes as Parameters<typeof sql.jsonb>[0])})
    ON CONFLICT (event_id) DO NOTHING`);
}

export const auditReadModel: ReadModel = { name: "audit", handles: auditEventTypes, apply: applyAuditEvent };

/** Filters of the audit list: the action (event type), who, which aggregate or request, and when. */
export interface AuditFilter extends PageRequest, TimeRange {
  action?: string;
  actorId?: string;
  aggregateId?: string;
  requestId?: string;
}

function auditWhere(tenantId: string, f: AuditFilter): FragmentSqlToken[] {
  const where = [sql.fragment`tenant_id = ${tenantId}`];
  if (f.action) where.push(sql.fragment`action = ${f.action}`);
  if (f.actorId) where.push(sql.fragment`actor_id = ${redactActorId(f.actorId)}`);
  if (f.aggregateId) where.push(sql.fragment`aggregate_id = ${f.aggregateId}`);
  if (f.requestId) where.push(sql.fragment`request_id = ${f.requestId}`);
  if (f.since) where.push(sql.fragment`occurred_at >= ${f.since}::timestamptz`);
  if (f.until) where.push(sql.fragment`occurred_at < ${f.until}::timestamptz`);
  where.push(afterCursor(f.cursor, "occurred_at", "event_id"));
  return where;
}

/** The tenant's audit log, newest first, filtered. */
export async function listAudit(db: Queryable, tenantId: string, filter: AuditFilter = {}): Promise<Page<AuditRow>> {
  const limit = clampLimit(filter.limit);
  const rows = await db.any(sql.type(AuditRow)`
    SELECT event_id AS id, occurred_at AS "occurredAt", jsonb_build_object('kind', actor_kind, 'id', actor_id) AS actor,
           action, aggregate_type AS "aggregateType", aggregate_id AS "aggregateId", request_id AS "requestId", changes
    FROM audit_log
    WHERE ${whereAll(auditWhere(tenantId, filter))}
    ORDER BY occurred_at DESC, event_id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.occurredAt, id: row.id }));
}
