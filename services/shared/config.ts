import { z } from "zod";
import { isValidCidr } from "../../domain/targets/address.js";
import type { TracingConfig } from "./tracing.js";

/** The shortest operator token accepted when NODE_ENV=production. */
const MIN_PRODUCTION_ADMIN_TOKEN = 32;

/** The roles one process can run; `ZEN_ROLES` picks a subset. */
export const ROLES = ["api", "router", "dispatcher", "projector", "replayer"] as const;
export type Role = (typeof ROLES)[number];

/**
 * What `npm start` runs without ZEN_ROLES: one process per group. Chosen by `npm run bench` on a
 * two-core machine (README, Performance): the projector's SQL and the api's requests each get an
 * event loop of their own, beside the router, dispatcher and replayer.
 */
export const DEFAULT_PROCESS_LAYOUT = "api;router,dispatcher,replayer;projector";

/** Parses a ZEN_PROCESSES layout: groups of roles separated by `;`, each role in at most one group. */
export function parseProcessLayout(text: string): Role[][] {
  const groups = text
    .split(";")
    .map((group) => parseRoles(group, "ZEN_PROCESSES"))
    .filter((group) => group.length > 0);
  const all = groups.flat();
  if (groups.length === 0 || new Set(all).size !== all.length) {
    throw new ConfigError(`ZEN_PROCESSES must be groups of ${ROLES.join(",")} separated by ";", each role at most once (got "${text}")`);
  }
  return groups;
}

function parseRoles(text: string, name: string): Role[] {
  const roles = text
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new ConfigError(`${name} must be a comma-separated subset of ${ROLES.join(",")} (got "${text}")`);
  return roles as Role[];
}

const booleanFlag = z
  .enum(["true", "false", "1", "0", ""])
  .default("false")
  .transform((v) => v === "true" || v === "1");

const Environment = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().default("127.0.0.1"),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/zen_webhooks"),
  ZEN_ADMIN_TOKEN: z.string().optional(),
  ZEN_MASTER_KEY: z.string().optional(),
  /** Older master keys, comma-separated: they open secrets sealed before a rotation and seal nothing. */
  ZEN_MASTER_KEYS_PREVIOUS: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((k) => k.trim())
        .filter(Boolean),
    ),
  ZEN_ALLOW_PRIVATE_TARGETS: booleanFlag,
  ZEN_ALLOWED_TARGET_CIDRS: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((c) => c.trim())
        .filter(Boolean),
    )
    .refine((cidrs) => cidrs.every(isValidCidr), "must be comma-separated CIDRs, e.g. 127.0.0.0/8,fd00::/8"),
  /** Exact strings log redaction leaves intact, comma-separated. */
  ZEN_REDACT_ALLOW: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((k) => k.trim())
        .filter(Boolean),
    ),
  ZEN_STREAM_PREFIX: z.string().default("zen"),
  ZEN_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** The event stream's size cap in bytes (-1: none): once it holds that much, new messages are refused (503); nothing is ever dropped. */
  ZEN_STREAM_MAX_BYTES: z.coerce.number().int().min(-1).default(-1),
  ZEN_ROLES: z.string().default(ROLES.join(",")),
  /** Processes `npm start` runs when ZEN_ROLES is unset: role groups separated by `;`, e.g. `api,router;dispatcher;projector`. */
  ZEN_PROCESSES: z.string().default(DEFAULT_PROCESS_LAYOUT),
  /** Port of the ops server (/metrics, /health, /ready) in a process without the api role; unset: none. */
  ZEN_OPS_PORT: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(0).max(65_535).optional()),
  ZEN_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  /** Request line plus headers; above it the api answers 431. */
  ZEN_MAX_HEADER_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(16 * 1024),
  /** Browser origins CORS lets in, comma-separated; none by default. */
  ZEN_CORS_ORIGINS: z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(",")
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /** How long a client may take to send a whole request (headers and body): past it, 408 and the connection closed. */
  ZEN_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** How long a connection may stay silent both ways before it is closed (the event feeds send a heartbeat every 15 s). */
  ZEN_CONNECTION_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
  /** Endpoints and inbound sources a tenant may have, unless the operator set its own (`PUT /v1/tenants/{id}/limits`). */
  ZEN_MAX_ENDPOINTS_PER_TENANT: z.coerce.number().int().min(1).max(2_000).default(1_000),
  ZEN_MAX_SOURCES_PER_TENANT: z.coerce.number().int().min(1).default(100),
  /** Test sends a tenant may make a minute, and DLQ replays it may have running at once, unless the operator set its own. */
  ZEN_TEST_SENDS_PER_MINUTE: z.coerce.number().int().min(1).default(60),
  ZEN_MAX_REPLAYS_IN_FLIGHT: z.coerce.number().int().min(1).default(5),
  /** Payload bytes a tenant may ingest (API and inbound together) a second and a rolling day, unless the operator set its own. */
  ZEN_PAYLOAD_BYTES_PER_SECOND: z.coerce
    .number()
    .int()
    .min(1_024)
    .default(8 * 1024 ** 2),
  ZEN_PAYLOAD_BYTES_PER_DAY: z.coerce
    .number()
    .int()
    .min(1_024)
    .default(16 * 1024 ** 3),
  /** Failed handlings in a row after which a reactor parks a message (NATS being away does not count). */
  ZEN_PARK_AFTER_FAILURES: z.coerce.number().int().min(1).max(1_000).default(5),
  /** Live event-feed connections (`GET /v1/webhooks/events`) at once, per tenant and per api process. */
  ZEN_FEED_MAX_PER_TENANT: z.coerce.number().int().min(1).default(20),
  ZEN_FEED_MAX_PER_PROCESS: z.coerce.number().int().min(1).default(1_000),
  /** The platform-wide ingest bucket per tenant (a tenant's `limits.ingress` overrides it). */
  ZEN_INGRESS_CAPACITY: z.coerce.number().int().min(1).default(2_000),
  ZEN_INGRESS_REFILL_PER_SECOND: z.coerce.number().min(0.001).default(1_000),
  /** Operator JWTs: an OIDC issuer (its JWKS from ZEN_OIDC_JWKS_URL or discovery) or a static public key. */
  ZEN_OIDC_ISSUER: z.string().url().optional(),
  ZEN_OIDC_AUDIENCE: z.string().optional(),
  ZEN_OIDC_JWKS_URL: z.string().url().optional(),
  ZEN_JWT_PUBLIC_KEY: z.string().optional(),
  ZEN_DELIVERY_CONCURRENCY: z.coerce.number().int().min(1).default(256),
  ZEN_DELIVERY_CONCURRENCY_PER_ENDPOINT: z.coerce.number().int().min(1).default(32),
  /** A tenant's share of a dispatcher's attempts in flight; unset: half of ZEN_DELIVERY_CONCURRENCY (at least one endpoint's). */
  ZEN_DELIVERY_CONCURRENCY_PER_TENANT: z.coerce.number().int().min(1).optional(),
  /** Continuous failure (from the first failure of the run) after which an endpoint is disabled: 5 days. */
  ZEN_ENDPOINT_DISABLE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(5 * 24 * 3_600_000),
  /** The circuit breaker per endpoint: consecutive transient failures that open it, how long it stays open, probes. */
  ZEN_CIRCUIT_FAILURE_THRESHOLD: z.coerce.number().int().min(1).default(5),
  ZEN_CIRCUIT_OPEN_MS: z.coerce.number().int().min(100).default(60_000),
  ZEN_CIRCUIT_MAX_PROBES: z.coerce.number().int().min(1).default(3),
  /** `/ready` says `degraded` when the read models are more than this many events behind, or behind and still for ZEN_READY_STALL_MS. */
  ZEN_READY_MAX_LAG_EVENTS: z.coerce.number().int().min(0).default(10_000),
  ZEN_READY_STALL_MS: z.coerce.number().int().min(1_000).default(60_000),
  /** How long start-up waits for NATS and Postgres to answer (a retry a second) before it gives up; 0: no wait. */
  ZEN_STARTUP_WAIT_SECONDS: z.coerce.number().int().min(0).max(3_600).default(30),
  NODE_ENV: z.string().default("development"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Tracing: `true` turns it on, `false` off whatever the `OTEL_*` variables say; unset follows them. */
  ZEN_TRACING: z.enum(["true", "false", "1", "0", ""]).optional(),
  OTEL_SDK_DISABLED: z.string().optional(),
  OTEL_TRACES_EXPORTER: z.string().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().optional(),
  OTEL_SERVICE_NAME: z.string().optional(),
});

export interface Config {
  port: number;
  host: string;
  natsUrl: string;
  databaseUrl: string;
  /** The platform operator's bearer token; when unset, operator routes refuse every caller. */
  adminToken: string | undefined;
  masterKey: string | undefined;
  /** Previous master keys, decrypt only (`ZEN_MASTER_KEYS_PREVIOUS`). */
  masterKeysPrevious: string[];
  allowPrivateTargets: boolean;
  /** Ranges the SSRF guard lets through although not global (`ZEN_ALLOWED_TARGET_CIDRS`). */
  allowedTargetCidrs: string[];
  /** Strings the log redaction keeps (`ZEN_REDACT_ALLOW`). */
  redactAllow: string[];
  streamPrefix: string;
  streamReplicas: number;
  /** The event stream's size past which new messages are refused (`ZEN_STREAM_MAX_BYTES`, -1: none). */
  streamMaxBytes: number;
  roles: Role[];
  /** The processes `npm start` runs when ZEN_ROLES is unset (ZEN_PROCESSES). */
  processes: Role[][];
  /**
   * `ZEN_OPS_PORT`: where a process without the api role serves `/metrics`, `/health` and `/ready`
   * (on `host`); undefined: nowhere. With the api role the api serves them and this is unused.
   */
  opsPort: number | undefined;
  maxBodyBytes: number;
  /** Request line plus headers (`ZEN_MAX_HEADER_BYTES`); above it, 431. */
  maxHeaderBytes: number;
  /** Origins CORS allows (`ZEN_CORS_ORIGINS`); empty: no cross-origin access. */
  corsOrigins: string[];
  /** The whole request's arrival (`ZEN_REQUEST_TIMEOUT_MS`) and an idle connection (`ZEN_CONNECTION_TIMEOUT_MS`). */
  timeouts: { requestMs: number; connectionMs: number };
  /** Failed handlings in a row after which a reactor parks a message (`ZEN_PARK_AFTER_FAILURES`). */
  parkAfterFailures: number;
  /** Live event-feed connections at once (`ZEN_FEED_MAX_PER_TENANT`, `ZEN_FEED_MAX_PER_PROCESS`). */
  feedLimits: { perTenant: number; perProcess: number };
  /** Endpoints and sources per tenant by default (`ZEN_MAX_ENDPOINTS_PER_TENANT`, `ZEN_MAX_SOURCES_PER_TENANT`). */
  quotas: { maxEndpoints: number; maxSources: number; testSendsPerMinute: number; maxReplaysInFlight: number };
  /** Payload bytes a tenant may ingest a second and a day (`ZEN_PAYLOAD_BYTES_PER_SECOND`, `ZEN_PAYLOAD_BYTES_PER_DAY`). */
  payloadLimits: { payloadBytesPerSecond: number; payloadBytesPerDay: number };
  /** The default ingest bucket of every tenant (`ZEN_INGRESS_CAPACITY`, `ZEN_INGRESS_REFILL_PER_SECOND`). */
  ingress: { capacity: number; refillPerSecond: number };
  /** How operator JWTs are verified; undefined: no JWTs accepted. */
  jwt: JwtConfig | undefined;
  deliveryConcurrency: number;
  deliveryConcurrencyPerEndpoint: number;
  /** A tenant's share of a dispatcher's attempts in flight (`ZEN_DELIVERY_CONCURRENCY_PER_TENANT`); unset: half. */
  deliveryConcurrencyPerTenant: number | undefined;
  /** An endpoint failing without a break for longer than this is disabled (`ZEN_ENDPOINT_DISABLE_AFTER_MS`). */
  endpointDisableAfterMs: number;
  /** Circuit breaker thresholds (`ZEN_CIRCUIT_FAILURE_THRESHOLD`, `ZEN_CIRCUIT_OPEN_MS`, `ZEN_CIRCUIT_MAX_PROBES`). */
  circuit: { failureThreshold: number; halfOpenAfterMs: number; maxProbes: number };
  /** Read-model lag that makes `/ready` say `degraded` (`ZEN_READY_MAX_LAG_EVENTS`, `ZEN_READY_STALL_MS`). */
  readyLag: { maxLagEvents: number; stallMs: number };
  /** How long start-up waits for NATS and Postgres (`ZEN_STARTUP_WAIT_SECONDS`). */
  startupWaitSeconds: number;
  logLevel: string;
  /** Traces (README "Tracing"): off unless `ZEN_TRACING=true` or an `OTEL_*` exporter is configured. */
  tracing: TracingConfig;
}

/** Reads the configuration from the environment (DESIGN.md "Running"), with local defaults. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Environment.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${issues}`);
  }
  const e = parsed.data;
  const roles = parseRoles(e.ZEN_ROLES, "ZEN_ROLES");
  if (roles.length === 0) throw new ConfigError(`ZEN_ROLES must be a comma-separated subset of ${ROLES.join(",")} (got "${e.ZEN_ROLES}")`);
  const processes = parseProcessLayout(e.ZEN_PROCESSES);
  if (e.NODE_ENV === "production" && !e.ZEN_MASTER_KEY) {
    throw new ConfigError("ZEN_MASTER_KEY must be set in production (32 bytes: `openssl rand -hex 32`)");
  }
  // A guessable operator token in production is an open door: refuse a short one.
  if (e.NODE_ENV === "production" && e.ZEN_ADMIN_TOKEN && e.ZEN_ADMIN_TOKEN.length < MIN_PRODUCTION_ADMIN_TOKEN) {
    throw new ConfigError(`ZEN_ADMIN_TOKEN must be at least ${MIN_PRODUCTION_ADMIN_TOKEN} characters in production (\`openssl rand -hex 32\`)`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    natsUrl: e.NATS_URL,
    databaseUrl: e.DATABASE_URL,
    adminToken: e.ZEN_ADMIN_TOKEN || undefined,
    masterKey: e.ZEN_MASTER_KEY || undefined,
    masterKeysPrevious: e.ZEN_MASTER_KEYS_PREVIOUS,
    allowPrivateTargets: e.ZEN_ALLOW_PRIVATE_TARGETS,
    allowedTargetCidrs: e.ZEN_ALLOWED_TARGET_CIDRS,
    redactAllow: e.ZEN_REDACT_ALLOW,
    streamPrefix: e.ZEN_STREAM_PREFIX,
    streamReplicas: e.ZEN_STREAM_REPLICAS,
    streamMaxBytes: e.ZEN_STREAM_MAX_BYTES,
    roles,
    processes,
    opsPort: e.ZEN_OPS_PORT,
    maxBodyBytes: e.ZEN_MAX_BODY_BYTES,
    maxHeaderBytes: e.ZEN_MAX_HEADER_BYTES,
    corsOrigins: e.ZEN_CORS_ORIGINS,
    timeouts: { requestMs: e.ZEN_REQUEST_TIMEOUT_MS, connectionMs: e.ZEN_CONNECTION_TIMEOUT_MS },
    parkAfterFailures: e.ZEN_PARK_AFTER_FAILURES,
    feedLimits: { perTenant: e.ZEN_FEED_MAX_PER_TENANT, perProcess: e.ZEN_FEED_MAX_PER_PROCESS },
    payloadLimits: { payloadBytesPerSecond: e.ZEN_PAYLOAD_BYTES_PER_SECOND, payloadBytesPerDay: e.ZEN_PAYLOAD_BYTES_PER_DAY },
    quotas: {
      maxEndpoints: e.ZEN_MAX_ENDPOINTS_PER_TENANT,
      maxSources: e.ZEN_MAX_SOURCES_PER_TENANT,
      testSendsPerMinute: e.ZEN_TEST_SENDS_PER_MINUTE,
      maxReplaysInFlight: e.ZEN_MAX_REPLAYS_IN_FLIGHT,
    },
    ingress: { capacity: e.ZEN_INGRESS_CAPACITY, refillPerSecond: e.ZEN_INGRESS_REFILL_PER_SECOND },
    jwt: jwtConfig(e),
    deliveryConcurrency: e.ZEN_DELIVERY_CONCURRENCY,
    deliveryConcurrencyPerEndpoint: e.ZEN_DELIVERY_CONCURRENCY_PER_ENDPOINT,
    deliveryConcurrencyPerTenant: e.ZEN_DELIVERY_CONCURRENCY_PER_TENANT,
    endpointDisableAfterMs: e.ZEN_ENDPOINT_DISABLE_AFTER_MS,
    circuit: { failureThreshold: e.ZEN_CIRCUIT_FAILURE_THRESHOLD, halfOpenAfterMs: e.ZEN_CIRCUIT_OPEN_MS, maxProbes: e.ZEN_CIRCUIT_MAX_PROBES },
    readyLag: { maxLagEvents: e.ZEN_READY_MAX_LAG_EVENTS, stallMs: e.ZEN_READY_STALL_MS },
    startupWaitSeconds: e.ZEN_STARTUP_WAIT_SECONDS,
    logLevel: e.LOG_LEVEL,
    tracing: { enabled: tracingEnabled(e), serviceName: e.OTEL_SERVICE_NAME || "zen-webhooks" },
  };
}

/**
 * Operator JWTs (README "Configuration"): a static public key (development), or an OIDC issuer whose
 * keys come from `ZEN_OIDC_JWKS_URL` or its discovery document. The audience is required with an
 * issuer, so a token minted for another application of the same issuer is refused.
 */
export interface JwtConfig {
  issuer: string | undefined;
  audience: string | undefined;
  jwksUrl: string | undefined;
  publicKey: string | undefined;
}

function jwtConfig(e: z.infer<typeof Environment>): JwtConfig | undefined {
  const publicKey = e.ZEN_JWT_PUBLIC_KEY?.trim() || undefined;
  const issuer = e.ZEN_OIDC_ISSUER || undefined;
  if (!publicKey && !issuer && !e.ZEN_OIDC_JWKS_URL) return undefined;
  if (!publicKey && !issuer) throw new ConfigError("ZEN_OIDC_JWKS_URL needs ZEN_OIDC_ISSUER");
  if (issuer && !e.ZEN_OIDC_AUDIENCE) throw new ConfigError("ZEN_OIDC_ISSUER needs ZEN_OIDC_AUDIENCE");
  return { issuer, audience: e.ZEN_OIDC_AUDIENCE || undefined, jwksUrl: e.ZEN_OIDC_JWKS_URL || undefined, publicKey };
}

/**
 * Off by default. `ZEN_TRACING=false`, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn
 * it off; otherwise `ZEN_TRACING=true`, any `OTEL_TRACES_EXPORTER`, or an OTLP endpoint turn it on.
 */
function tracingEnabled(e: z.infer<typeof Environment>): boolean {
  const zen = e.ZEN_TRACING;
  if (zen === "false" || zen === "0") return false;
  if (e.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = (e.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  if (exporters[0] === "none") return false;
  if (zen === "true" || zen === "1") return true;
  return exporters.length > 0 || Boolean(e.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** A configuration problem, reported as one line without a stack trace. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
