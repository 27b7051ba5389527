/** The read side: database, migrations, the projector and the queries the api reads. */
export { createDatabase, ensureDatabaseExists, type Database, type Queryable, type Tx } from "./db.js";
export { API_READER_ROLE, withAllTenants, withTenant } from "./tenant-scope.js";
export { migrate, migrationsApplied, migrationsDirectory, listMigrations } from "./migrate.js";
export { createProjector, type Projector, type ProjectorDeps, type ProjectorLogger, type ProjectorState } from "./projector.js";
export { rebuildReadModels } from "./rebuild.js";
export {
  applyBatch,
  readModelSeq,
  waitForSeq,
  CheckpointRewoundError,
  READ_MODELS_PROJECTION,
  type StreamEvent,
} from "./checkpoint.js";
export { applyEvent, applyEvents, batchReadModels, readModels, readModelTables } from "./read-models/index.js";
export {
  parseEnvelope,
  InvalidCursorError,
  type BatchReadModel,
  type KnownEnvelope,
  type Sequenced,
  type Page,
  type PageRequest,
  type ReadModel,
} from "./read-models/shared.js";
export { getTenant, TenantRow } from "./read-models/tenants.js";
export { listApiKeys, ApiKeyRow } from "./read-models/api-keys.js";
export { listEndpoints, getEndpoint, EndpointRow } from "./read-models/endpoints.js";
export { getMessage, MessageRow, RoutingView } from "./read-models/messages.js";
export {
  listDeliveries,
  getDelivery,
  listDlq,
  countDlq,
  DeliveryRow,
  DeliveryStatus,
  AttemptRow,
  DlqRow,
  type DeliveryDetail,
  type DeliveryFilter,
  type DlqFilter,
  type TimeRange,
} from "./read-models/deliveries-queries.js";
export { listAudit, AuditRow, type AuditFilter } from "./read-models/audit.js";
export { listSources, getSource, SourceRow } from "./read-models/sources.js";
export { listParked, getParked, ParkedRow, type ParkedFilter } from "./read-models/parked.js";
