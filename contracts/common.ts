import { z } from "zod";

/** The scopes a credential can carry (API.md "Credentials and scopes"). */
export const Scope = z.enum(["ingest", "webhooks:read", "webhooks:write", "deliveries:read", "dlq:replay", "audit:read", "admin"]);
export type Scope = z.infer<typeof Scope>;

/** Who caused an event: the platform operator, a tenant API key, or the platform itself. */
export const Actor = z.object({ kind: z.enum(["operator", "apikey", "system"]), id: z.string() }).strict();
export type Actor = z.infer<typeof Actor>;

/**
 * A secret encrypted at rest: `enc:v1:<keyId>:<base64 of iv|tag|ciphertext>` (AES-256-GCM).
 * Events and read models only ever hold this form.
 */
export const EncryptedSecret = z.string().regex(/^enc:v1:[A-Za-z0-9_-]+:[A-Za-z0-9+/=]+$/);
export type EncryptedSecret = z.infer<typeof EncryptedSecret>;

/** Grace of a rotated-out endpoint secret: 24 h unless asked, at most 7 days (API.md "rotate-secret"). */
export const DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3_600;
export const MAX_ROTATION_GRACE_SECONDS = 7 * 24 * 3_600;

/** Outbound rate limit of one endpoint; absent means unlimited. */
export const RateLimit = z.object({ perSecond: z.number().int().min(1).max(100_000).describe("Requests per second at most") }).strict();
export type RateLimit = z.infer<typeof RateLimit>;

/** How an endpoint's failed deliveries are retried (API.md "the retry policy"). */
export const RetryPolicy = z
  .object({
    maxAttempts: z.number().int().min(1).max(50).describe("Attempts in all, the first included"),
    initialDelayMs: z.number().int().min(0).max(86_400_000),
    maxDelayMs: z.number().int().min(0).max(86_400_000),
    factor: z.number().min(1).max(10),
    maxDurationMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400_000)
      .describe("Retries stop this long after the first attempt"),
  })
  .strict();
export type RetryPolicy = z.infer<typeof RetryPolicy>;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  initialDelayMs: 5_000,
  maxDelayMs: 600_000,
  factor: 3,
  maxDurationMs: 900_000,
};

/** A token bucket: up to `capacity` at once, refilled at `refillPerSecond`. */
export const TokenBucket = z
  .object({
    capacity: z.number().int().min(1).max(1_000_000),
    refillPerSecond: z.number().min(0.001).max(1_000_000),
  })
  .strict();
export type TokenBucket = z.infer<typeof TokenBucket>;

export const DeliveryPolicy = z.object({ timeoutMs: z.number().int().min(100).max(30_000).describe("Total time allowed for one attempt") }).strict();
export type DeliveryPolicy = z.infer<typeof DeliveryPolicy>;

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { timeoutMs: 15_000 };

/** Id prefixes by aggregate (API.md "Conventions"). */
export const ID_PREFIX = {
  tenant: "ten_",
  apikey: "key_",
  endpoint: "ep_",
  message: "msg_",
  delivery: "dlv_",
  replay: "rpl_",
  source: "src_",
  parked: "pkd_",
} as const;
export type AggregateType = keyof typeof ID_PREFIX;

/** An id of the given kind: its prefix, then letters, digits, `_` or `-` (safe as a NATS subject token). */
export const prefixedId = (kind: AggregateType) =>
  z.string().regex(new RegExp(`^${ID_PREFIX[kind]}[A-Za-z0-9_-]{1,100}$`), `must be an id starting with ${ID_PREFIX[kind]}`);
