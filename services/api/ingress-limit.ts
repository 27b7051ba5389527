import { JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { TokenBucket } from "../../contracts/common.js";
import { levelAt, type BucketLevel } from "../../domain/limits/token-bucket.js";
import type { Topology } from "../../streams/topology.js";

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

/** How long a leased chunk may be spent; what is left then is dropped (never spent late). */
export const LEASE_TTL_MS = 1_000;
/** A chunk is about this much of a second's refill, so leases stay small against the bucket. */
const LEASE_FRACTION_OF_SECOND = 0.05;
const MAX_CAS_ATTEMPTS = 10;
/** Leases one request may wait for when concurrent requests spend each one before it gets a token. */
const MAX_ROUNDS = 8;
const WRONG_LAST_SEQUENCE = 10071;

interface Lease {
  /** Leases of a tenant in the order cut, so a late waiter never puts an older one back. */
  serial: number;
  tokens: number;
  expiresAtMs: number;
  /** The shared bucket's level right after this lease was cut from it. */
  sharedTokens: number;
}

/** The size of a chunk a process leases: ~50 ms of refill, at most a tenth of the capacity, at least 1. */
export const chunkSize = (bucket: TokenBucket): number =>
  Math.max(1, Math.min(Math.ceil(bucket.refillPerSecond * LEASE_FRACTION_OF_SECOND), Math.floor(bucket.capacity / 10)));

/**
 * Why leases: a bucket per process would let N processes admit N times the rate, and a shared
 * bucket touched on every request would cost a NATS round trip per ingest. So the bucket itself lives
 * in one KV record per tenant (`<PREFIX>_INGRESS`, `{tokens, atMs}`), and each process takes tokens
 * from it in small chunks (~50 ms of refill), changing it only by compare-and-set on the record's
 * revision (`update(key, value, revision)`; a lost race re-reads and tries again). A process spends
 * its chunk locally and drops what is left after {@link LEASE_TTL_MS}; when more requests are waiting
 * than a chunk holds, the lease is cut for all of them (they spend it at once). Every admitted request was
 * taken from the shared bucket first, so all processes together never admit more than capacity +
 * refill × time (clock skew aside: `atMs` never moves backwards); they admit less by at most the
 * chunks that expire unspent, N × chunk per second at worst, a few percent of the rate.
 */
export async function createIngressLimiter(nc: NatsConnection, topology: Topology): Promise<IngressLimiter> {
  const kv = await new Kvm(nc).create(topology.bucketName("ingress"), { ttl: 24 * 3600 * 1000, replicas: topology.replicas });
  const leases = new Map<string, Lease>();
  const inflight = new Map<string, Promise<Lease | number>>();
  const known = new Map<string, Seen>();
  /** Requests of a tenant waiting for the next lease: it is cut big enough for all of them. */
  const waiting = new Map<string, number>();
  let serial = 0;

  /** Cuts a chunk from the shared bucket: the lease, or (none free) the ms until a token is. */
  async function lease(tenantId: string, bucket: TokenBucket, nowMs: number): Promise<Lease | number> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const seen = attempt === 0 ? known.get(tenantId) : await read(kv, tenantId);
      const at = Math.max(nowMs, seen?.level?.atMs ?? 0);
      const level = levelAt(bucket, seen?.level, at);
      const grant = Math.min(Math.max(chunkSize(bucket), waiting.get(tenantId) ?? 0), Math.floor(level.tokens));
      if (grant < 1) {
        if (attempt === 0 && seen) continue; // our copy may be stale: look again before refusing
        return Math.ceil(((1 - level.tokens) / bucket.refillPerSecond) * 1000);
      }
      const next: BucketLevel = { tokens: level.tokens - grant, atMs: at };
      const revision = await write(kv, tenantId, next, seen?.revision ?? 0);
      if (revision === null) continue;
      known.set(tenantId, { level: next, revision });
      return { serial: ++serial, tokens: grant, expiresAtMs: nowMs + LEASE_TTL_MS, sharedTokens: next.tokens };
    }
    // Lost every race: the bucket is hot across processes; ask the client to come back shortly.
    return 1_000;
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

  async function take(tenantId: string, bucket: TokenBucket, nowMs = Date.now()): Promise<IngressDecision> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const held = leases.get(tenantId);
      if (held && held.tokens >= 1 && held.expiresAtMs > nowMs) {
        held.tokens -= 1;
        return decision(true, bucket, held.tokens + held.sharedTokens, 0);
      }
      // One lease request per tenant at a time; concurrent requests wait for it and share it.
      let cutting = inflight.get(tenantId);
      if (!cutting) {
        cutting = lease(tenantId, bucket, nowMs).finally(() => inflight.delete(tenantId));
        inflight.set(tenantId, cutting);
      }
      waiting.set(tenantId, (waiting.get(tenantId) ?? 0) + 1);
      let result: Lease | number;
      try {
        result = await cutting;
      } finally {
        // Counted down in this request's own continuation, so the next lease still sees who waits.
        waiting.set(tenantId, (waiting.get(tenantId) ?? 1) - 1);
      }
      if (typeof result === "number") return decision(false, bucket, 0, result);
      // A newer lease replaces an older one: what the older still held is dropped, never added up.
      if ((leases.get(tenantId)?.serial ?? 0) < result.serial) leases.set(tenantId, result);
    }
    return decision(false, bucket, 0, 1_000);
  }

  return { take };
}

/** The shared bucket as last read or written; no level: full (never used, or expired). */
type Seen = { level: BucketLevel | undefined; revision: number };

async function read(kv: KV, tenantId: string): Promise<Seen | undefined> {
  const entry = await kv.get(tenantId);
  if (!entry) return undefined;
  return { level: entry.operation === "PUT" ? entry.json<BucketLevel>() : undefined, revision: entry.revision };
}

/** Compare-and-set: the new revision, or null when another process wrote first. */
async function write(kv: KV, tenantId: string, level: BucketLevel, revision: number): Promise<number | null> {
  try {
    const value = JSON.stringify(level);
    return revision === 0 ? await kv.create(tenantId, value) : await kv.update(tenantId, value, revision);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) return null;
    throw error;
  }
}
