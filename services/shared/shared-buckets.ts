import { JetStreamApiError, jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type NatsConnection,
} from "@nats-io/transport-node";
import type { TokenBucket } from "../../contracts/common.js";
import { levelAt, waitForToken, type BucketLevel } from "../../domain/limits/token-bucket.js";
import type { Topology } from "../../streams/topology.js";
import { isWrongLastSequence } from "../../streams/jetstream-errors.js";

/** The tokens taken (`serial` names the lease they came from), or refused with the ms until they are free. */
export type Take = { allowed: true; remaining: number; serial: number } | { allowed: false; waitMs: number };

/**
 * Token buckets shared by every process that opens the same purpose on one prefix. Keys are KV
 * keys (`[-/_=.a-zA-Z0-9]`), e.g. a tenant id or `endpoint.<id>`.
 */
export interface SharedBuckets {
  /**
   * Takes `cost` tokens (one unless said, e.g. a request's bytes) from `key`'s bucket; `remaining`
   * is this process's lease plus the shared level as last seen. A cost above the capacity is never taken.
   */
  take(key: string, bucket: TokenBucket, nowMs?: number, cost?: number): Promise<Take>;
  /** Puts `cost` tokens taken with `serial` back into this process's lease, if that lease is still current and unexpired. */
  giveBack(key: string, serial: number, nowMs?: number, cost?: number): void;
}

/** How long a leased chunk may be spent; what is left then is dropped (never spent late). */
export const LEASE_TTL_MS = 1_000;
/** A chunk is about this much of a second's refill, so leases stay small against the bucket. */
const LEASE_FRACTION_OF_SECOND = 0.05;
const MAX_CAS_ATTEMPTS = 10;
/** Leases one take may wait for when concurrent takes spend each one before it gets a token. */
const MAX_ROUNDS = 8;
/** Records of buckets nobody touched for a day are dropped (a missing record is a full bucket). */
const RECORD_TTL_MS = 24 * 3600 * 1000;
/** A lease request not answered by then is given up (a request lost in a reconnect waited the client's 5 s). */
const LEASE_TIMEOUT_MS = 1_000;
/** After the shared record could not be reached, takes come from this process's own buckets for this long. */
const DEGRADED_MS = 1_000;

interface Lease {
  /** Leases of a key in the order cut, so a late waiter never puts an older one back. */
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
 * bucket touched on every take would cost a NATS round trip each. So each bucket lives in one KV
 * record (`<PREFIX>_<PURPOSE>`, `{tokens, atMs}`), and each process takes tokens from it in small
 * chunks ({@link chunkSize}: ~50 ms of refill, so 5/s leases one token at a time), changing it only by
 * compare-and-set on the record's revision (`update(key, value, revision)`; a lost race re-reads and
 * tries again — nats-server 2.9 has all this). A process spends its chunk locally and drops what is
 * left after {@link LEASE_TTL_MS}; when more takes are waiting than a chunk holds, the lease is cut for
 * all of them (they spend it at once). Every token taken came from the shared bucket first, so all
 * processes together never take more than capacity + refill × time (clock skew aside: `atMs` never
 * moves backwards); they take less by at most the chunks that expire unspent, N × chunk per second
 * at worst, a few percent of the rate.
 */
export async function createSharedBuckets(nc: NatsConnection, topology: Topology, purpose: string): Promise<SharedBuckets> {
  const name = topology.bucketName(purpose);
  await new Kvm(nc).create(name, { ttl: RECORD_TTL_MS, replicas: topology.replicas });
  const kv = await new Kvm(jetstream(nc, { timeout: LEASE_TIMEOUT_MS })).open(name);
  // While NATS cannot answer (a restart, a reconnect), a limit holds per process rather than
  // failing every request of the tenant: N processes admit up to N times the rate for that while.
  const local = createLocalBuckets();
  let degradedUntilMs = 0;
  const leases = new Map<string, Lease>();
  const inflight = new Map<string, Promise<Lease | number>>();
  const known = new Map<string, Seen>();
  /** Takes of a key waiting for the next lease: it is cut big enough for all of them. */
  const waiting = new Map<string, number>();
  let serial = 0;

  /** Cuts a chunk from the shared bucket: the lease, or (fewer than `cost` free) the ms until they are. */
  async function lease(key: string, bucket: TokenBucket, nowMs: number, cost: number): Promise<Lease | number> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const seen = attempt === 0 ? known.get(key) : await read(kv, key);
      const at = Math.max(nowMs, seen?.level?.atMs ?? 0);
      const level = levelAt(bucket, seen?.level, at);
      // Big enough for this take and every take waiting for it, whatever their costs.
      const grant = Math.min(Math.max(chunkSize(bucket), cost, waiting.get(key) ?? 0), Math.floor(level.tokens));
      if (grant < cost) {
        if (attempt === 0 && seen) continue; // our copy may be stale: look again before refusing
        // Counted from the record's time, which may be ahead of ours (another process's clock).
        return Math.max(1, waitForToken(bucket, level, cost) + (at - nowMs));
      }
      const next: BucketLevel = { tokens: level.tokens - grant, atMs: at };
      const revision = await write(kv, key, next, seen?.revision ?? 0);
      if (revision === null) continue;
      known.set(key, { level: next, revision });
      return { serial: ++serial, tokens: grant, expiresAtMs: nowMs + LEASE_TTL_MS, sharedTokens: next.tokens };
    }
    // Lost every race: the bucket is hot across processes; come back shortly.
    return 1_000;
  }

  async function take(key: string, bucket: TokenBucket, nowMs = Date.now(), cost = 1): Promise<Take> {
    if (cost > bucket.capacity) return { allowed: false, waitMs: Number.POSITIVE_INFINITY };
    if (nowMs < degradedUntilMs) return local.take(key, bucket, nowMs, cost);
    try {
      return await takeShared(key, bucket, nowMs, cost);
    } catch (error) {
      if (!unreachable(error)) throw error;
      // The shared record is out of reach: this process's own bucket answers until it is back.
      degradedUntilMs = Date.now() + DEGRADED_MS;
      return local.take(key, bucket, nowMs, cost);
    }
  }

  async function takeShared(key: string, bucket: TokenBucket, nowMs: number, cost: number): Promise<Take> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const held = leases.get(key);
      if (held && held.tokens >= cost && held.expiresAtMs > nowMs) {
        held.tokens -= cost;
        return { allowed: true, remaining: held.tokens + held.sharedTokens, serial: held.serial };
      }
      // One lease request per key at a time; concurrent takes wait for it and share it.
      let cutting = inflight.get(key);
      if (!cutting) {
        cutting = lease(key, bucket, nowMs, cost).finally(() => inflight.delete(key));
        inflight.set(key, cutting);
      }
      waiting.set(key, (waiting.get(key) ?? 0) + cost);
      let result: Lease | number;
      try {
        result = await cutting;
      } finally {
        // Counted down in this take's own continuation, so the next lease still sees who waits.
        waiting.set(key, (waiting.get(key) ?? cost) - cost);
      }
      if (typeof result === "number") return { allowed: false, waitMs: result };
      // A newer lease replaces an older one: what the older still held is dropped, never added up.
      if ((leases.get(key)?.serial ?? 0) < result.serial) leases.set(key, result);
    }
    return { allowed: false, waitMs: 1_000 };
  }

  function giveBack(key: string, leaseSerial: number, nowMs = Date.now(), cost = 1): void {
    if (leaseSerial === LOCAL_SERIAL) {
      local.giveBack(key, leaseSerial, nowMs, cost);
      return;
    }
    const held = leases.get(key);
    if (held?.serial === leaseSerial && held.expiresAtMs > nowMs) held.tokens += cost;
  }

  return { take, giveBack };
}

/** JetStream's "temporarily unavailable" (its API answering while it recovers after a restart). */
const UNAVAILABLE_STATUS = 503;

/** NATS or JetStream could not answer now: a timeout, no responders, a connection down or reconnecting. */
function unreachable(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.status === UNAVAILABLE_STATUS;
  return [TimeoutError, NoRespondersError, RequestError, ConnectionError, ClosedConnectionError, DrainingConnectionError].some((type) => error instanceof type);
}

/** Tokens of this process's own buckets carry this serial (leases count from 1). */
const LOCAL_SERIAL = 0;

/** The shared bucket as last read or written; no level: full (never used, or expired). */
type Seen = { level: BucketLevel | undefined; revision: number };

async function read(kv: KV, key: string): Promise<Seen | undefined> {
  const entry = await kv.get(key);
  if (!entry) return undefined;
  return { level: entry.operation === "PUT" ? entry.json<BucketLevel>() : undefined, revision: entry.revision };
}

/** Compare-and-set: the new revision, or null when another process wrote first. */
async function write(kv: KV, key: string, level: BucketLevel, revision: number): Promise<number | null> {
  try {
    const value = JSON.stringify(level);
    return revision === 0 ? await kv.create(key, value) : await kv.update(key, value, revision);
  } catch (error) {
    if (isWrongLastSequence(error)) return null;
    throw error;
  }
}

/**
 * Buckets of this process only, with the same contract and no leases: for unit tests, for a
 * dispatcher built without shared buckets (its integration tests), where one process is all there
 * is, and for limits that are per process by design (the inbound route's recorded refusals and
 * its per-address limit). At most `maxKeys` buckets are kept: past that, the least recently used
 * one (taken from or refused) is forgotten and starts full again, so keys chosen by callers cannot
 * grow memory without bound.
 */
export function createLocalBuckets(maxKeys = Number.POSITIVE_INFINITY): SharedBuckets {
  const levels = new Map<string, BucketLevel>();
  const bounded = Number.isFinite(maxKeys);
  // Only a bounded set keeps its keys in order of use: an unbounded one need not move them.
  const keep = (key: string, level: BucketLevel) => {
    if (bounded) levels.delete(key);
    levels.set(key, level);
    if (bounded && levels.size > maxKeys) levels.delete(levels.keys().next().value!);
  };
  return {
    async take(key, bucket, nowMs = Date.now(), cost = 1) {
      if (cost > bucket.capacity) return { allowed: false, waitMs: Number.POSITIVE_INFINITY };
      const level = levelAt(bucket, levels.get(key), nowMs);
      if (level.tokens < cost) {
        // Still in use: a key refused again and again is the last one to forget.
        keep(key, levels.get(key) ?? level);
        return { allowed: false, waitMs: Math.max(1, waitForToken(bucket, level, cost)) };
      }
      keep(key, { tokens: level.tokens - cost, atMs: nowMs });
      return { allowed: true, remaining: level.tokens - cost, serial: LOCAL_SERIAL };
    },
    giveBack(key, _serial, _nowMs, cost = 1) {
      const level = levels.get(key);
      if (level) levels.set(key, { tokens: level.tokens + cost, atMs: level.atMs });
    },
  };
}
