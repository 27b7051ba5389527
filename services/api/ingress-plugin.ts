import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { TokenBucket } from "../../contracts/common.js";
import type { RegistryPort } from "./deps.js";
import * as E from "./errors.js";
import type { IngressDecision, IngressLimiter } from "./ingress-limit.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * The route spends the tenant's ingress bucket (429 `rate_limited` when it is empty);
     * `"inbound"`: the tenant named in the path, in a bucket of its own (same limits), since anyone
     * may call an inbound route and must not drain the tenant's ingest.
     */
    ingressLimited?: boolean | "inbound";
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
 * Spends one token of the tenant's ingress bucket (its `limits.ingress`, else the platform's) on
 * each request of an `ingressLimited` route, after authentication and before the body is read.
 */
export const ingressPlugin = fp<{ limiter: IngressLimiter; view: Pick<RegistryPort, "tenant">; defaults?: TokenBucket }>(
  async (app: FastifyInstance, { limiter, view, defaults = DEFAULT_INGRESS }) => {
    app.addHook("onRequest", async (request, reply) => {
      const limited = request.routeOptions.config?.ingressLimited;
      if (!limited) return;
      const inbound = limited === "inbound";
      const tenantId = inbound ? (request.params as { tenantId?: string }).tenantId : (request.auth?.tenantId ?? undefined);
      const tenant = tenantId === undefined ? undefined : view.tenant(tenantId);
      // An unknown tenant in an inbound path is a 404 later; it gets no bucket.
      if (!tenantId || (inbound && tenant?.status !== "active")) return;
      const bucket = (tenant?.status === "active" ? tenant.limits.ingress : undefined) ?? defaults;
      const decision = await limiter.take(inbound ? `${tenantId}.inbound` : tenantId, bucket);
      const headers = rateLimitHeaders(decision);
      if (!decision.allowed) throw E.rateLimited(decision.retryAfterSeconds, headers);
      reply.headers(headers);
    });
  },
  { name: "zen-ingress-limit", dependencies: ["zen-auth"] },
);
