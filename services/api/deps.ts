import type { Logger } from "pino";
import type { Database } from "../../projections/index.js";
import type { Streams } from "../../streams/connection.js";
import type { EventStore } from "../../streams/event-store.js";
import type { RegistryView } from "../../streams/registry-view.js";
import type { TenantFeed } from "../../streams/tenant-feed.js";
import type { Topology } from "../../streams/topology.js";
import type { Config } from "../shared/config.js";
import type { Metrics } from "../shared/metrics.js";
import type { Tracing } from "../shared/tracing.js";
import type { Readiness } from "../shared/ops-http.js";
import type { SecretBox } from "../shared/secret-box.js";
import type { EventIdClaims } from "./event-ids.js";
import type { IdempotencyStore } from "./idempotency-store.js";
import type { SharedBuckets } from "../shared/shared-buckets.js";
import type { IngressLimiter } from "./ingress-limit.js";
import type { JwtVerifier } from "./jwt.js";
import type { KeyUsage } from "./key-usage.js";
import type { ReadModels } from "./read-models.js";

/** Readiness is shared with the ops server (services/shared/ops-http.ts). */
export type { Readiness, ReadinessChecks } from "../shared/ops-http.js";

/** What readiness reads about the process beyond its connections (`services/probes.ts` makes them). */
export interface ReadinessProbes {
  /**
   * True when every loop the process runs is alive (durable consumers iterating, registry view
   * following, projector projecting or standing by for its lock) and its durable consumers exist.
   */
  consumersBound(): Promise<boolean>;
  /** The stream's last sequence and the read models' checkpoint. */
  readModelProgress?: () => Promise<{ streamSeq: number; checkpoint: number }>;
}

/** The registry view, as far as the api reads it. */
export type RegistryPort = Pick<RegistryView, "tenant" | "apiKeyByHash" | "endpoint" | "source" | "waitFor" | "liveCounts">;

/** Everything the api process needs, handed in by whoever starts it (`services/main.ts`, tests). */
export interface ApiDeps {
  config: Pick<Config, "adminToken" | "maxBodyBytes" | "allowPrivateTargets"> &
    Partial<
      Pick<
        Config,
        "allowedTargetCidrs" | "jwt" | "maxHeaderBytes" | "corsOrigins" | "ingress" | "timeouts" | "feedLimits" | "quotas" | "payloadLimits" | "streamMaxBytes"
      >
    >;
  store: EventStore;
  view: RegistryPort;
  /** The read-model database; `readModels` defaults to queries over it. */
  db: Database;
  readModels?: ReadModels;
  /** The NATS connection: the default `eventIds` bucket and readiness check use it. */
  streams?: Pick<Streams, "nc" | "js" | "jsm">;
  /** The ingest `eventId` dedupe; defaults to the KV bucket of `createEventIdClaims(streams.nc)`. */
  eventIds?: EventIdClaims;
  /** Inbound sources' provider delivery ids, each accepted once; defaults to the KV bucket `<PREFIX>_INBOUND_DELIVERIES`. */
  inboundDeliveries?: EventIdClaims;
  /** Inbound sources' verified signatures, each accepted once (30 days); defaults to the KV bucket `<PREFIX>_INBOUND_SIGNATURES`. */
  inboundSignatures?: EventIdClaims;
  /** Idempotency-Key claims and kept responses; defaults to the KV bucket of `createIdempotencyStore(streams.nc)`, bodies sealed by `secretBox`. */
  idempotency?: IdempotencyStore;
  /** The tenants' shared ingest buckets; defaults to the KV bucket of `createIngressLimiter(streams.nc)`. */
  ingress?: IngressLimiter;
  /** Each tenant's payload-bytes buckets, a second's and a day's, shared by every api process (`"payload_bytes"`). */
  payloadBytes?: SharedBuckets;
  /** Each tenant's test-send bucket, shared by every api process (`createSharedBuckets(nc, topology, "test_sends")`). */
  testSends?: SharedBuckets;
  /** Operator JWT verification; defaults to one made from `config.jwt`. */
  jwt?: JwtVerifier;
  /** Where API key uses are recorded; defaults to `apikey.used` events in `store`. */
  keyUsage?: KeyUsage;
  /** The tenants' own events from the log (`/v1/streams/events`, `/v1/webhooks/events`); defaults to one over `streams`. */
  feed?: TenantFeed;
  /** The most time between bytes on an open event feed (default 15 s). */
  feedHeartbeatMs?: number;
  secretBox: SecretBox;
  logger: Logger;
  topology: Topology;
  readiness?: Readiness;
  /** Consumers and read-model progress for the default readiness; without them it checks NATS and Postgres only. */
  probes?: ReadinessProbes;
  /** Read-model lag that makes `/ready` say `degraded` (default more than 10,000 events, or 60 s without progress). */
  readyLag?: { maxLagEvents?: number; stallMs?: number };
  /** Whether every migration is applied (`/readyz`); defaults to checking `db`. */
  migrationsApplied?: () => Promise<boolean>;
  /** The process's metrics; when absent, the app makes its own registry. */
  metrics?: Metrics;
  /** Spans for ingest requests (off by default). */
  tracing?: Tracing;
  /** The clock; tests may pin it. */
  now?: () => Date;
}
