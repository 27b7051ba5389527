import { sql } from "slonik";
import {
  getDelivery,
  getEndpoint,
  getSource,
  listAudit,
  listDeliveries,
  listApiKeys,
  listDlq,
  listEndpoints,
  listSources,
  listParked,
  getParked,
  waitForSeq,
  withAllTenants,
  withTenant,
  type AuditFilter,
  type AuditRow,
  type Database,
  type DeliveryDetail,
  type DeliveryFilter,
  type DeliveryRow,
  type DlqFilter,
  type ApiKeyRow,
  type DlqRow,
  type EndpointRow,
  type Page,
  type PageRequest,
  type ParkedFilter,
  type ParkedRow,
  type SourceRow,
} from "../../projections/index.js";

/** What the api reads from the Postgres read models: every query scoped to one tenant. */
export interface ReadModels {
  listEndpoints(tenantId: string, page: PageRequest): Promise<Page<EndpointRow>>;
  getEndpoint(tenantId: string, id: string): Promise<EndpointRow | null>;
  listDeliveries(tenantId: string, filter: DeliveryFilter): Promise<Page<DeliveryRow>>;
  getDelivery(tenantId: string, id: string): Promise<DeliveryDetail | null>;
  listDlq(tenantId: string, filter: DlqFilter): Promise<Page<DlqRow>>;
  listSources(tenantId: string, page: PageRequest): Promise<Page<SourceRow>>;
  getSource(tenantId: string, id: string): Promise<SourceRow | null>;
  /** The tenant's API keys (never the keys or their hashes), with when each was last used. */
  listApiKeys(tenantId: string, page: PageRequest): Promise<Page<ApiKeyRow>>;
  listAudit(tenantId: string, filter: AuditFilter): Promise<Page<AuditRow>>;
  /** Parked messages of every tenant: the operator's, never a tenant's. */
  listParked(filter: ParkedFilter): Promise<Page<ParkedRow>>;
  getParked(id: string): Promise<ParkedRow | null>;
  /** True once the read models have applied stream sequence `minSeq`; false after `timeoutMs`. */
  waitForSeq(minSeq: number, timeoutMs: number): Promise<boolean>;
  /** Answers when Postgres does. */
  ping(): Promise<void>;
}

/**
 * Tenant reads run in tenant-bound transactions (`withTenant`): as the NOBYPASSRLS reader role with
 * `app.tenant_id` set, so row-level security holds them to the tenant even where a query's own
 * `WHERE tenant_id` were missing. The checkpoint and the ping are operator-wide and run as the pool's user;
 * the parked-message reads are the operator's and opt in to every tenant's rows.
 */
export function createReadModels(db: Database): ReadModels {
  return {
    listEndpoints: (tenantId, page) => withTenant(db, tenantId, (tx) => listEndpoints(tx, tenantId, page)),
    getEndpoint: (tenantId, id) => withTenant(db, tenantId, (tx) => getEndpoint(tx, tenantId, id)),
    listDeliveries: (tenantId, filter) => withTenant(db, tenantId, (tx) => listDeliveries(tx, tenantId, filter)),
    getDelivery: (tenantId, id) => withTenant(db, tenantId, (tx) => getDelivery(tx, tenantId, id)),
    listDlq: (tenantId, filter) => withTenant(db, tenantId, (tx) => listDlq(tx, tenantId, filter)),
    listAudit: (tenantId, filter) => withTenant(db, tenantId, (tx) => listAudit(tx, tenantId, filter)),
    listSources: (tenantId, page) => withTenant(db, tenantId, (tx) => listSources(tx, tenantId, page)),
    getSource: (tenantId, id) => withTenant(db, tenantId, (tx) => getSource(tx, tenantId, id)),
    listApiKeys: (tenantId, page) => withTenant(db, tenantId, (tx) => listApiKeys(tx, tenantId, page)),
    listParked: (filter) => withAllTenants(db, (tx) => listParked(tx, filter)),
    getParked: (id) => withAllTenants(db, (tx) => getParked(tx, id)),
    waitForSeq: (minSeq, timeoutMs) => waitForSeq(db, minSeq, timeoutMs),
    ping: async () => {
      await db.query(sql.unsafe`SELECT 1`);
    },
  };
}
