import { setTimeout as sleepFor } from "node:timers/promises";
import type { TokenBucket } from "../../contracts/common.js";
import type { SharedBuckets } from "../shared/shared-buckets.js";

/** A bucket to take from, named by its KV key (e.g. `endpoint.<id>`, `tenant.<id>`). */
export interface NamedBucket {
  key: string;
  bucket: TokenBucket;
}

/** Go now (every bucket gave a token), or come back after `deferMs` (nothing kept). */
export type Admission = { admitted: true } | { deferMs: number };

export interface OutboundLimitsOptions {
  /** The longest an attempt waits for its tokens in process; a longer wait goes back to the server. */
  maxInlineWaitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

/** Tries one waiting attempt makes for its tokens before it goes back to the server anyway. */
const MAX_TRIES = 1_000;

/**
 * Outbound rate limits: every bucket an attempt needs (its endpoint's, its tenant's) must give a
 * token, taken from buckets shared by all dispatcher processes (`<PREFIX>_OUTBOUND`, leased as in
 * `services/shared/shared-buckets.ts`), so N dispatchers together still send at the limit.
 *
 * The attempts of one set of buckets wait in line in process, only the first asking the shared
 * buckets (no herd of waiters polling NATS); it sleeps the exact ms until a token is free and asks
 * again, so the bucket always has a taker when a token frees up (a message put back to the server
 * may come back late, and a token nobody takes is lost at the bucket's capacity). An attempt whose
 * place in line is more than `maxInlineWaitMs` away (counted at the strictest rate, as if this
 * process had the bucket alone), or that does not get its tokens within `maxInlineWaitMs` once
 * first, goes back to the server: waiting is never failing and holds little memory.
 *
 * Two buckets: when the tenant's refuses after the endpoint's gave a token, that token is given
 * back to this process's lease, so the next try spends it. It is lost only when the lease expires
 * first (a wait for the tenant longer than the 1 s lease): at most one endpoint token per such
 * wait, a bounded under-admission of the endpoint's rate while its tenant's bucket is the tighter.
 */
export function createOutboundLimits(shared: SharedBuckets, { maxInlineWaitMs = 5_000, now = Date.now, sleep = sleepFor }: OutboundLimitsOptions = {}) {
  const lines = new Map<string, { length: number; tail: Promise<void> }>();

  /** Takes a token from each bucket, or gives back what it took: the ms until the refusing one has a token. */
  async function takeAll(buckets: readonly NamedBucket[]): Promise<number> {
    const taken: { key: string; serial: number }[] = [];
    for (const { key, bucket } of buckets) {
      const result = await shared.take(key, bucket, now());
      if (result.allowed) {
        taken.push({ key, serial: result.serial });
        continue;
      }
      for (const token of taken) shared.giveBack(token.key, token.serial, now());
      return result.waitMs;
    }
    return 0;
  }

  async function whenFirst(buckets: readonly NamedBucket[]): Promise<Admission> {
    const deadline = now() + maxInlineWaitMs;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const waitMs = await takeAll(buckets);
      if (waitMs === 0) return { admitted: true };
      if (now() + waitMs > deadline) return { deferMs: waitMs };
      await sleep(waitMs);
    }
    return { deferMs: maxInlineWaitMs };
  }

  return {
    async admit(buckets: readonly NamedBucket[]): Promise<Admission> {
      if (buckets.length === 0) return { admitted: true };
      const lineKey = buckets.map((b) => b.key).join(" ");
      const line = lines.get(lineKey) ?? { length: 0, tail: Promise.resolve() };
      const aheadMs = (line.length * 1000) / Math.min(...buckets.map((b) => b.bucket.refillPerSecond));
      if (aheadMs > maxInlineWaitMs) return { deferMs: aheadMs - maxInlineWaitMs / 2 };
      const before = line.tail;
      let done!: () => void;
      line.tail = new Promise<void>((resolve) => (done = resolve));
      line.length++;
      lines.set(lineKey, line);
      try {
        await before;
        return await whenFirst(buckets);
      } finally {
        done();
        if (--line.length === 0) lines.delete(lineKey);
      }
    },
  };
}

export type OutboundLimits = ReturnType<typeof createOutboundLimits>;
