import type { Tx } from "../db.js";
import { apiKeysReadModel } from "./api-keys.js";
import { auditReadModel } from "./audit.js";
import { deliveriesReadModel } from "./deliveries.js";
import { endpointsReadModel } from "./endpoints.js";
import { messagesReadModel } from "./messages.js";
import { replaysReadModel } from "./replays.js";
import type { KnownEnvelope, ReadModel } from "./shared.js";
import { sourcesReadModel } from "./sources.js";
import { tenantsReadModel } from "./tenants.js";

/** Every read model the projector maintains, in the order each event is applied to them. */
export const readModels: readonly ReadModel[] = [
  tenantsReadModel,
  apiKeysReadModel,
  endpointsReadModel,
  messagesReadModel,
  deliveriesReadModel,
  replaysReadModel,
  sourcesReadModel,
  auditReadModel,
];

/** Every table a read model writes: what a rebuild truncates. */
export const readModelTables = [
  "tenants",
  "api_keys",
  "endpoints",
  "messages",
  "deliveries",
  "delivery_attempts",
  "dlq_entries",
  "replays",
  "audit_log",
  "sources",
] as const;

/** Applies one event (at stream sequence `seq`) to every read model that handles its type. */
export async function applyEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  for (const model of readModels) {
    if (model.handles.includes(envelope.type)) await model.apply(tx, envelope, seq);
  }
}
