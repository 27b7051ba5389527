import { sql } from "slonik";
import { z } from "zod";
import type { Queryable, Tx } from "../db.js";
import { afterCursor, clampLimit, toPage, type KnownEnvelope, type Page, type PageRequest, type ReadModel } from "./shared.js";

export const apiKeyEventTypes = ["apikey.created", "apikey.revoked", "apikey.used"] as const;

/** An API key as listed: never the key nor its hash, only the display prefix. */
export const ApiKeyRow = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  keyPrefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
export type ApiKeyRow = z.infer<typeof ApiKeyRow>;

export async function applyApiKeyEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  switch (envelope.type) {
    case "apikey.created": {
      const { name, scopes, keyPrefix } = envelope.data;
      await tx.query(sql.unsafe`
        INSERT INTO api_keys (id, tenant_id, name, scopes, key_prefix, created_at, last_seq)
        VALUES (${envelope.aggregateId}, ${envelope.tenantId}, ${name}, ${sql.array(scopes, "text")},
                ${keyPrefix}, ${envelope.occurredAt}::timestamptz, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    }
    case "apikey.revoked":
      await tx.query(sql.unsafe`
        UPDATE api_keys SET revoked_at = ${envelope.occurredAt}::timestamptz, last_seq = ${seq}
        WHERE id = ${envelope.aggregateId} AND last_seq < ${seq}`);
      return;
    case "apikey.used":
      // Uses only move forward; the checkpoint makes a redelivered event a no-op anyway.
      await tx.query(sql.unsafe`
        UPDATE api_keys SET last_used_at = GREATEST(last_used_at, ${envelope.data.usedAt}::timestamptz), last_seq = ${seq}
        WHERE id = ${envelope.aggregateId} AND last_seq < ${seq}`);
      return;
    default:
      return;
  }
}

export const apiKeysReadModel: ReadModel = { name: "api_keys", handles: apiKeyEventTypes, apply: applyApiKeyEvent };

const columns = sql.fragment`id, name, scopes, key_prefix AS "keyPrefix", created_at AS "createdAt", revoked_at AS "revokedAt",
  last_used_at AS "lastUsedAt"`;

/** The tenant's API keys, revoked ones included, newest first. */
export async function listApiKeys(db: Queryable, tenantId: string, page: PageRequest = {}): Promise<Page<ApiKeyRow>> {
  const limit = clampLimit(page.limit);
  const rows = await db.any(sql.type(ApiKeyRow)`
    SELECT ${columns} FROM api_keys
    WHERE tenant_id = ${tenantId} AND ${afterCursor(page.cursor, "created_at", "id")}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}
