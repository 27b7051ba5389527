import type { Logger } from "pino";
import type { Database } from "../../projections/index.js";
import type { Streams } from "../../streams/connection.js";
import type { EventStore } from "../../streams/event-store.js";
import type { RegistryView } from "../../streams/registry-view.js";
import type { Topology } from "../../streams/topology.js";
import type { Config } from "../shared/config.js";
import type { SecretBox } from "../shared/secret-box.js";
import type { EventIdClaims } from "./event-ids.js";
import type { ReadModels } from "./read-models.js";

/** Whether each dependency answers; `/ready` reports it. */
export type Readiness = () => Promise<{ nats: boolean; postgres: boolean }>;

/** The registry view, as far as the api reads it. */
export type RegistryPort = Pick<RegistryView, "tenant" | "apiKeyByHash" | "endpoint" | "waitFor">;

/** Everything the api process needs, handed in by whoever starts it (`services/main.ts`, tests). */
export interface ApiDeps {
  config: Pick<Config, "adminToken" | "maxBodyBytes" | "allowPrivateTargets"> & Partial<Pick<Config, "allowedTargetCidrs">>;
  store: EventStore;
  view: RegistryPort;
  /** The read-model database; `readModels` defaults to queries over it. */
  db: Database;
  readModels?: ReadModels;
  /** The NATS connection: the default `eventIds` bucket and readiness check use it. */
  streams?: Pick<Streams, "nc">;
  /** The ingest `eventId` dedupe; defaults to the KV bucket of `createEventIdClaims(streams.nc)`. */
  eventIds?: EventIdClaims;
  secretBox: SecretBox;
  logger: Logger;
  topology: Topology;
  readiness?: Readiness;
  /** The clock; tests may pin it. */
  now?: () => Date;
}
