import { sql } from "slonik";
import { z } from "zod";
import type { Queryable, Tx } from "../db.js";
import type { KnownEnvelope, ReadModel } from "./shared.js";

export const tenantEventTypes = ["tenant.created"] as const;

/** A tenant as the api returns it. */
export const TenantRow = z.object({ id: z.string(), name: z.string(), createdAt: z.string() });
export type TenantRow = z.infer<typeof TenantRow>;

export async function applyTenantEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  if (envelope.type !== "tenant.created") return;
  await tx.query(sql.unsafe`
    INSERT INTO tenants (id, name, created_at, last_seq)
    VALUES (${envelope.aggregateId}, ${envelope.data.name}, ${envelope.occurredAt}::timestamptz, ${seq})
    ON CONFLICT (id) DO NOTHING`);
}

export const tenantsReadModel: ReadModel = { name: "tenants", handles: tenantEventTypes, apply: applyTenantEvent };

export async function getTenant(db: Queryable, tenantId: string): Promise<TenantRow | null> {
  return db.maybeOne(sql.type(TenantRow)`
    SELECT id, name, created_at AS "createdAt" FROM tenants WHERE id = ${tenantId}`);
}
