import type { NatsConnection } from "@nats-io/transport-node";
import type { TokenBucket } from "../../contracts/common.js";
import type { Topology } from "../../streams/topology.js";
import { createSharedBuckets } from "../shared/shared-buckets.js";

/** What the limiter decided for one request, with what the RateLimit-* headers say. */
export interface IngressDecision {
  allowed: boolean;
  /** The bucket's capacity. */
  limit: number;
  /** Tokens left (this process's lease plus the shared bucket as last seen), rounded down. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** When refused: seconds until a token is free (at least 1). */
  retryAfterSeconds: number;
}

/** A per-tenant ingest limit shared by every api process. */
export interface IngressLimiter {
  take(tenantId: string, bucket: TokenBucket, nowMs?: number): Promise<IngressDecision>;
}

/**
 * A tenant's ingest bucket is one record of the KV bucket `<PREFIX>_INGRESS`, keyed by tenant id,
 * that every api process leases small chunks from by compare-and-set (see `createSharedBuckets` in
 * `services/shared/shared-buckets.ts` for the design and its bounds): all processes together admit
 * at most capacity + refill × time.
 */
export async function createIngressLimiter(nc: NatsConnection, topology: Topology): Promise<IngressLimiter> {
  const buckets = await createSharedBuckets(nc, topology, "ingress");
  return {
    async take(tenantId, bucket, nowMs = Date.now()) {
      const taken = await buckets.take(tenantId, bucket, nowMs);
      return taken.allowed ? decision(true, bucket, taken.remaining, 0) : decision(false, bucket, 0, taken.waitMs);
    },
  };
}

function decision(allowed: boolean, bucket: TokenBucket, remaining: number, waitMs: number): IngressDecision {
  const left = Math.max(0, Math.floor(remaining));
  return {
    allowed,
    limit: bucket.capacity,
    remaining: left,
    resetSeconds: Math.ceil(Math.max(0, bucket.capacity - left) / bucket.refillPerSecond),
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  };
}
