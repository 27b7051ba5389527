import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import { EventTypeFrom, HmacConfig, SourceScheme } from "../../contracts/inbound.js";
import type { EventData } from "../../contracts/events.js";
import type { Queryable, Tx } from "../db.js";
import { afterCursor, clampLimit, jsonbOrNull, toPage, type KnownEnvelope, type Page, type PageRequest, type ReadModel } from "./shared.js";

export const sourceEventTypes = ["source.created", "source.updated", "source.deleted"] as const;

/** An inbound source as the api returns it: no secret (the table has none); absent fields are `null`. */
export const SourceRow = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    scheme: SourceScheme,
    hmac: HmacConfig.nullable(),
    eventTypeFrom: EventTypeFrom.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .transform(({ tenantId, ...row }) => ({ ...row, inboundPath: `/v1/inbound/${tenantId}/${row.id}` }));
export type SourceRow = z.infer<typeof SourceRow>;

/** The SET clauses of one `source.updated`; a new secret changes no column. */
function updateAssignments(data: EventData<"source.updated">): FragmentSqlToken[] {
  const set: FragmentSqlToken[] = [];
  if (data.name !== undefined) set.push(sql.fragment`name = ${data.name}`);
  if (data.hmac !== undefined) set.push(sql.fragment`hmac = ${jsonbOrNull(data.hmac)}`);
  if (data.eventTypeFrom !== undefined) set.push(sql.fragment`event_type_from = ${jsonbOrNull(data.eventTypeFrom)}`);
  return set;
}

async function updateSource(tx: Tx, envelope: KnownEnvelope, seq: number, set: FragmentSqlToken[]) {
  const all = [...set, sql.fragment`updated_at = ${envelope.occurredAt}::timestamptz`, sql.fragment`last_seq = ${seq}`];
  await tx.query(sql.unsafe`
    UPDATE sources SET ${sql.join(all, sql.fragment`, `)}
    WHERE id = ${envelope.aggregateId} AND tenant_id = ${envelope.tenantId} AND last_seq < ${seq}`);
}

export async function applySourceEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  switch (envelope.type) {
    case "source.created": {
      const d = envelope.data;
      await tx.query(sql.unsafe`
        INSERT INTO sources (id, tenant_id, name, scheme, hmac, event_type_from, created_at, updated_at, last_seq)
        VALUES (${envelope.aggregateId}, ${envelope.tenantId}, ${d.name}, ${d.scheme}, ${jsonbOrNull(d.hmac)},
                ${jsonbOrNull(d.eventTypeFrom)}, ${envelope.occurredAt}::timestamptz, ${envelope.occurredAt}::timestamptz, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    }
    case "source.updated":
      return updateSource(tx, envelope, seq, updateAssignments(envelope.data));
    case "source.deleted":
      return updateSource(tx, envelope, seq, [sql.fragment`deleted_at = ${envelope.occurredAt}::timestamptz`]);
    default:
      return;
  }
}

export const sourcesReadModel: ReadModel = { name: "sources", handles: sourceEventTypes, apply: applySourceEvent };

const columns = sql.fragment`
  id, tenant_id AS "tenantId", name, scheme, hmac, event_type_from AS "eventTypeFrom",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** The tenant's sources (deleted ones left out), newest first. */
export async function listSources(db: Queryable, tenantId: string, page: PageRequest = {}): Promise<Page<SourceRow>> {
  const limit = clampLimit(page.limit);
  const rows = await db.any(sql.type(SourceRow)`
    SELECT ${columns} FROM sources
    WHERE tenant_id = ${tenantId} AND deleted_at IS NULL AND ${afterCursor(page.cursor, "created_at", "id")}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}

/** One source of the tenant, or null (also when deleted or another tenant's). */
export async function getSource(db: Queryable, tenantId: string, id: string): Promise<SourceRow | null> {
  return db.maybeOne(sql.type(SourceRow)`
    SELECT ${columns} FROM sources WHERE tenant_id = ${tenantId} AND id = ${id} AND deleted_at IS NULL`);
}
