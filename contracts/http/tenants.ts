import { z } from "zod";
import { prefixedId, Scope, TokenBucket } from "../common.js";
import { Timestamp } from "./common.js";

/** `POST /v1/tenants` body. */
export const TenantIn = z
  .object({ name: z.string().trim().min(1).max(200).describe("Display name of the tenant") })
  .strict()
  .describe("A new tenant");
export type TenantIn = z.infer<typeof TenantIn>;

export const TenantOut = z
  .object({
    id: prefixedId("tenant").describe("Tenant id (`ten_…`)"),
    name: z.string(),
    createdAt: Timestamp,
  })
  .describe("A tenant");
export type TenantOut = z.infer<typeof TenantOut>;

export const TenantParams = z.object({ tenantId: prefixedId("tenant") }).strict();
export const ApiKeyParams = z.object({ tenantId: prefixedId("tenant"), keyId: prefixedId("apikey") }).strict();

/** Scopes a tenant key may carry: every scope but `admin`, which only the operator holds. */
export const TenantScope = Scope.exclude(["admin"]);
export type TenantScope = z.infer<typeof TenantScope>;

/** `POST /v1/tenants/{tenantId}/api-keys` body. */
export const ApiKeyIn = z
  .object({
    name: z.string().trim().min(1).max(200).describe("What the key is for"),
    scopes: z.array(TenantScope).min(1).max(10).describe("What the key may do (never `admin`)"),
  })
  .strict()
  .describe("A new API key");
export type ApiKeyIn = z.infer<typeof ApiKeyIn>;

export const ApiKeyOut = z
  .object({
    id: prefixedId("apikey").describe("Key id (`key_…`)"),
    key: z.string().describe("The key itself (`zk_…`): shown once, store it now"),
    keyPrefix: z.string().describe("Its first characters, shown in lists"),
    name: z.string(),
    scopes: z.array(TenantScope),
  })
  .describe("A created API key, with the key shown this once");
export type ApiKeyOut = z.infer<typeof ApiKeyOut>;

/** One key in `GET /v1/tenants/{tenantId}/api-keys`: never the key nor its hash. */
export const ApiKeyListItem = z
  .object({
    id: prefixedId("apikey"),
    name: z.string(),
    scopes: z.array(z.string()),
    keyPrefix: z.string().describe("The key's first characters"),
    createdAt: Timestamp,
    revokedAt: Timestamp.nullable(),
    lastUsedAt: Timestamp.nullable().describe("When the key last authenticated a request, to the hour; null if never"),
  })
  .describe("An API key as listed");
export type ApiKeyListItem = z.infer<typeof ApiKeyListItem>;

/** `PUT /v1/tenants/{tenantId}/limits` body: the limits to change; `null` removes one. */
export const TenantLimitsIn = z
  .object({
    outbound: TokenBucket.nullable().optional().describe("Outbound deliveries of all the tenant's endpoints together; off unless set"),
    ingress: TokenBucket.nullable().optional().describe("Ingest requests of the tenant"),
    // A routing decision lists every target (~120 bytes each) and each is an append per message: 2,000 keeps both in bounds.
    maxEndpoints: z.number().int().min(1).max(2_000).nullable().optional().describe("Endpoints the tenant may have, at most 2,000; default ZEN_MAX_ENDPOINTS_PER_TENANT"),
    maxSources: z.number().int().min(1).max(100_000).nullable().optional().describe("Inbound sources the tenant may have; default ZEN_MAX_SOURCES_PER_TENANT"),
    testSendsPerMinute: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .nullable()
      .optional()
      .describe("Test sends a minute (a burst of as many); default ZEN_TEST_SENDS_PER_MINUTE"),
    maxReplaysInFlight: z.number().int().min(1).max(1_000).nullable().optional().describe("DLQ replays not yet completed at once; default ZEN_MAX_REPLAYS_IN_FLIGHT"),
    payloadBytesPerSecond: z
      .number()
      .int()
      .min(1_024)
      .nullable()
      .optional()
      .describe("Ingested and inbound payload bytes a second, a burst of one second's worth (keep it above the largest body); default ZEN_PAYLOAD_BYTES_PER_SECOND"),
    payloadBytesPerDay: z.number().int().min(1_024).nullable().optional().describe("Payload bytes a rolling day; default ZEN_PAYLOAD_BYTES_PER_DAY"),
    maxLiveFeeds: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .nullable()
      .optional()
      .describe("Live event feeds open at once in each api process; default ZEN_FEED_MAX_PER_TENANT"),
    maxAttemptsInFlight: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .nullable()
      .optional()
      .describe(
        "Delivery attempts in flight at once in each dispatcher process (never more than half of the slots other tenants leave in it); default ZEN_DELIVERY_CONCURRENCY_PER_TENANT",
      ),
  })
  .strict()
  .describe("Per-tenant limits");
export type TenantLimitsIn = z.infer<typeof TenantLimitsIn>;

export const TenantLimitsOut = z
  .object({
    tenantId: prefixedId("tenant"),
    limits: z.object({
      outbound: TokenBucket.optional(),
      ingress: TokenBucket.optional(),
      maxEndpoints: z.number().optional(),
      maxSources: z.number().optional(),
      testSendsPerMinute: z.number().optional(),
      maxReplaysInFlight: z.number().optional(),
      payloadBytesPerSecond: z.number().optional(),
      payloadBytesPerDay: z.number().optional(),
      maxLiveFeeds: z.number().optional(),
      maxAttemptsInFlight: z.number().optional(),
    }),
  })
  .describe("A tenant's limits as they stand");
