import { z } from "zod";
import { isValidCidr } from "../../domain/targets/address.js";
import type { TracingConfig } from "./tracing.js";

/** The roles one process can run; `ZEN_ROLES` picks a subset, all by default. */
export const ROLES = ["api", "router", "dispatcher", "projector", "replayer"] as const;
export type Role = (typeof ROLES)[number];

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
    .transform((v) => v.split(",").map((k) => k.trim()).filter(Boolean)),
  ZEN_ALLOW_PRIVATE_TARGETS: booleanFlag,
  ZEN_ALLOWED_TARGET_CIDRS: z
    .string()
    .default("")
    .transform((v) => v.split(",").map((c) => c.trim()).filter(Boolean))
    .refine((cidrs) => cidrs.every(isValidCidr), "must be comma-separated CIDRs, e.g. 127.0.0.0/8,fd00::/8"),
  /** Exact strings log redaction leaves intact, comma-separated. */
  ZEN_REDACT_ALLOW: z
    .string()
    .default("")
    .transform((v) => v.split(",").map((k) => k.trim()).filter(Boolean)),
  ZEN_STREAM_PREFIX: z.string().default("zen"),
  ZEN_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  ZEN_ROLES: z.string().default(ROLES.join(",")),
  ZEN_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(256 * 1024),
  ZEN_DELIVERY_CONCURRENCY: z.coerce.number().int().min(1).default(256),
  ZEN_DELIVERY_CONCURRENCY_PER_ENDPOINT: z.coerce.number().int().min(1).default(32),
  /** Continuous failure (from the first failure of the run) after which an endpoint is disabled: 5 days. */
  ZEN_ENDPOINT_DISABLE_AFTER_MS: z.coerce.number().int().min(1_000).default(5 * 24 * 3_600_000),
  /** The circuit breaker per endpoint: consecutive transient failures that open it, how long it stays open, probes. */
  ZEN_CIRCUIT_FAILURE_THRESHOLD: z.coerce.number().int().min(1).default(5),
  ZEN_CIRCUIT_OPEN_MS: z.coerce.number().int().min(100).default(60_000),
  ZEN_CIRCUIT_MAX_PROBES: z.coerce.number().int().min(1).default(3),
  /** `/ready` says `degraded` when the read models are more than this many events behind, or behind and still for ZEN_READY_STALL_MS. */
  ZEN_READY_MAX_LAG_EVENTS: z.coerce.number().int().min(0).default(10_000),
  ZEN_READY_STALL_MS: z.coerce.number().int().min(1_000).default(60_000),
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
  roles: Role[];
  maxBodyBytes: number;
  deliveryConcurrency: number;
  deliveryConcurrencyPerEndpoint: number;
  /** An endpoint failing without a break for longer than this is disabled (`ZEN_ENDPOINT_DISABLE_AFTER_MS`). */
  endpointDisableAfterMs: number;
  /** Circuit breaker thresholds (`ZEN_CIRCUIT_FAILURE_THRESHOLD`, `ZEN_CIRCUIT_OPEN_MS`, `ZEN_CIRCUIT_MAX_PROBES`). */
  circuit: { failureThreshold: number; halfOpenAfterMs: number; maxProbes: number };
  /** Read-model lag that makes `/ready` say `degraded` (`ZEN_READY_MAX_LAG_EVENTS`, `ZEN_READY_STALL_MS`). */
  readyLag: { maxLagEvents: number; stallMs: number };
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
  const roles = e.ZEN_ROLES.split(",").map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0 || roles.length === 0) {
    throw new ConfigError(`ZEN_ROLES must be a comma-separated subset of ${ROLES.join(",")} (got "${e.ZEN_ROLES}")`);
  }
  if (e.NODE_ENV === "production" && !e.ZEN_MASTER_KEY) {
    throw new ConfigError("ZEN_MASTER_KEY must be set in production (32 bytes: `openssl rand -hex 32`)");
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
    roles: roles as Role[],
    maxBodyBytes: e.ZEN_MAX_BODY_BYTES,
    deliveryConcurrency: e.ZEN_DELIVERY_CONCURRENCY,
    deliveryConcurrencyPerEndpoint: e.ZEN_DELIVERY_CONCURRENCY_PER_ENDPOINT,
    endpointDisableAfterMs: e.ZEN_ENDPOINT_DISABLE_AFTER_MS,
    circuit: { failureThreshold: e.ZEN_CIRCUIT_FAILURE_THRESHOLD, halfOpenAfterMs: e.ZEN_CIRCUIT_OPEN_MS, maxProbes: e.ZEN_CIRCUIT_MAX_PROBES },
    readyLag: { maxLagEvents: e.ZEN_READY_MAX_LAG_EVENTS, stallMs: e.ZEN_READY_STALL_MS },
    logLevel: e.LOG_LEVEL,
    tracing: { enabled: tracingEnabled(e), serviceName: e.OTEL_SERVICE_NAME || "zen-webhooks" },
  };
}

/**
 * Off by default. `ZEN_TRACING=false`, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn
 * it off; otherwise `ZEN_TRACING=true`, any `OTEL_TRACES_EXPORTER`, or an OTLP endpoint turn it on.
 */
function tracingEnabled(e: z.infer<typeof Environment>): boolean {
  const zen = e.ZEN_TRACING;
  if (zen === "false" || zen === "0") return false;
  if (e.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = (e.OTEL_TRACES_EXPORTER ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  if (exporters[0] === "none") return false;
  if (zen === "true" || zen === "1") return true;
  return exporters.length > 0 || Boolean(e.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** A configuration problem, reported as one line without a stack trace. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
