import { sql } from "slonik";
import { transaction, type Database, type Tx } from "./db.js";

/**
 * The role the api reads the read models as (created by 007_row_level_security.sql): NOLOGIN,
 * NOBYPASSRLS, SELECT only. Row-level security shows it one tenant's rows: the `app.tenant_id` set
 * in the same transaction, or none at all when unset.
 */
export const API_READER_ROLE = "zen_api_reader";

/**
 * Runs `read` in a transaction bound to one tenant: as {@link API_READER_ROLE}, with `app.tenant_id`
 * set. Both are transaction-local (`set_config(…, true)` is `SET LOCAL`), so the pooled connection
 * forgets them at COMMIT or ROLLBACK and the next user of it sees nothing of this tenant. A query
 * that forgets `WHERE tenant_id` inside still sees this tenant's rows only.
 */
export function withTenant<T>(db: Database, tenantId: string, read: (tx: Tx) => Promise<T>): Promise<T> {
  if (tenantId === "") throw new Error("withTenant needs a tenant id");
  return transaction(db, async (tx) => {
    // One round trip for both: set_config('role', …, true) is SET LOCAL ROLE, membership checked.
    await tx.query(sql.unsafe`SELECT set_config('role', ${API_READER_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`);
    return read(tx);
  });
}

/**
 * Runs `work` in a transaction that opts in to every tenant's rows (`app.projector` = `on`, the
 * `all_tenants` policy of 007_row_level_security.sql), as the pool's user, which must own the
 * tables. The one way past row-level security for the projector, a rebuild and operator-wide reads
 * (the DLQ gauge); without it the owner, like everyone, sees nothing while no tenant is set.
 * Transaction-local, so the pooled connection forgets it at COMMIT or ROLLBACK.
 */
export function withAllTenants<T>(db: Database, work: (tx: Tx) => Promise<T>): Promise<T> {
  return transaction(db, async (tx) => {
    await tx.query(sql.unsafe`SELECT set_config('app.projector', 'on', true)`);
    return work(tx);
  });
}
