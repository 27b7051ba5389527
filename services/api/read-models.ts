import { sql } from "slonik";
import {
  getDelivery,
  getEndpoint,
  getSource,
  listDeliveries,
  listApiKeys,
  listDlq,
  listEndpoints,
  listSources,
  waitForSeq,
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
  /** True once the read models have applied stream sequence `minSeq`; false after `timeoutMs`. */
  waitForSeq(minSeq: number, timeoutMs: number): Promise<boolean>;
  /** Answers when Postgres does. */
  ping(): Promise<void>;
}

export function createReadModels(db: Database): ReadModels {
  return {
    listEndpoints: (tenantId, page) => listEndpoints(db, tenantId, page),
    getEndpoint: (tenantId, id) => getEndpoint(db, tenantId, id),
    listDeliveries: (tenantId, filter) => listDeliveries(db, tenantId, filter),
    getDelivery: (tenantId, id) => getDelivery(db, tenantId, id),
    listDlq: (tenantId, filter) => listDlq(db, tenantId, filter),
    listSources: (tenantId, page) => listSources(db, tenantId, page),
    getSource: (tenantId, id) => getSource(db, tenantId, id),
    listApiKeys: (tenantId, page) => listApiKeys(db, tenantId, page),
    waitForSeq: (minSeq, timeoutMs) => waitForSeq(db, minSeq, timeoutMs),
    ping: async () => {
      await db.query(sql.unsafe`SELECT 1`);
    },
  };
}
