import { ownLimit } from "../../domain/tenant/tenant.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { TokenBucket } from "../../contracts/common.js";
import type { SharedBuckets } from "../shared/shared-buckets.js";
import type { RegistryPort } from "./deps.js";
import * as E from "./errors.js";
import type { IngressDecision, IngressLimiter } from "./ingress-limit.js";
import { payloadLimitsOf, spendPayloadBytes, type PayloadLimits } from "./payload-quota.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route spends the tenant's ingress bucket (429 `rate_limited` when it is empty). */
    ingressLimited?: boolean;
  }
}

/** API.md's defaults: a burst of 2,000, then 1,000 a second. */
export const DEFAULT_INGRESS: TokenBucket = { capacity: 2_000, refillPerSecond: 1_000 };

/** The IETF draft's RateLimit-* fields, on admitted and refused requests alike. */
function rateLimitHeaders(decision: IngressDecision): Record<string, string> {
  return {
    "ratelimit-limit": String(decision.limit),
    "ratelimit-remaining": String(decision.remaining),
    "ratelimit-reset": String(decision.resetSeconds),
  };
}

/**
 * Spends one token of the bucket under `key`: answers 429 `rate_limited` when it is empty, else
 * sets the RateLimit headers on the reply.
 */
export async function spendIngress(limiter: IngressLimiter, key: string, bucket: TokenBucket, reply: FastifyReply): Promise<void> {
  const decision = await limiter.take(key, bucket);
  const headers = rateLimitHeaders(decision);
  if (!decision.allowed) throw E.rateLimited(decision.retryAfterSeconds, headers);
  reply.headers(headers);
}

/** The tenant's ingress bucket: its `limits.ingress`, else the platform's. */
export const ingressBucketOf = (tenant: ReturnType<RegistryPort["tenant"]>, defaults: TokenBucket): TokenBucket => ownLimit(tenant, "ingress") ?? defaults;

/** A request's payload size: its Content-Length, else (chunked) its parsed body's JSON. */
function bodyBytes(request: FastifyRequest): number {
  const declared = Number(request.headers["content-length"]);
  return Number.isSafeInteger(declared) && declared >= 0 ? declared : Buffer.byteLength(JSON.stringify(request.body ?? null));
}

/**
 * Spends one token of the tenant's ingress bucket on each request of an `ingressLimited` route,
 * after authentication and before the body is read; then, once it is read and valid, its bytes of
 * the tenant's payload allowance.
 */
export const ingressPlugin = fp<{
  limiter: IngressLimiter;
  view: Pick<RegistryPort, "tenant">;
  defaults?: TokenBucket;
  payloadBytes: SharedBuckets;
  payloadDefaults: PayloadLimits;
}>(
  async (app: FastifyInstance, { limiter, view, defaults = DEFAULT_INGRESS, payloadBytes, payloadDefaults }) => {
    app.addHook("onRequest", async (request, reply) => {
      if (!request.routeOptions.config?.ingressLimited) return;
      const tenantId = request.auth?.tenantId;
      if (!tenantId) return;
      await spendIngress(limiter, tenantId, ingressBucketOf(view.tenant(tenantId), defaults), reply);
    });
    app.addHook("preHandler", async (request) => {
      if (!request.routeOptions.config?.ingressLimited) return;
      const tenantId = request.auth?.tenantId;
      if (!tenantId) return;
      await spendPayloadBytes(payloadBytes, tenantId, bodyBytes(request), payloadLimitsOf(view, tenantId, payloadDefaults));
    });
  },
  { name: "zen-ingress-limit", dependencies: ["zen-auth"] },
);
