import type { TokenBucket } from "../../contracts/common.js";
import { levelAt, reserveToken, waitForToken, type BucketLevel } from "../../domain/limits/token-bucket.js";

/** A bucket to take from, named so its level is kept between attempts (e.g. `ep:<id>`, `tenant:<id>`). */
export interface NamedBucket {
  key: string;
  bucket: TokenBucket;
}

/** Go after `waitMs` (a token is reserved), or come back after `deferMs` (nothing reserved). */
export type Admission = { waitMs: number } | { deferMs: number };

/**
 * Outbound rate limits of this dispatcher process: every bucket an attempt needs (its endpoint's,
 * its tenant's) must have a token. A wait of up to a few seconds is taken in process, so the
 * bucket always has takers when a token frees up (a message put back to the server may come back
 * late, and a token nobody takes is lost at the bucket's capacity); a longer one goes back to the
 * server with the message, so waiting is never failing and holds little memory. The levels are per
 * process: several dispatchers each allow the full rate (a shared bucket would need a NATS KV).
 */
export function createOutboundLimits({ maxInlineWaitMs = 5_000 } = {}) {
  const levels = new Map<string, BucketLevel>();

  return {
    admit(buckets: readonly NamedBucket[], nowMs: number): Admission {
      let longest = 0;
      for (const { key, bucket } of buckets) longest = Math.max(longest, waitForToken(bucket, levelAt(bucket, levels.get(key), nowMs)));
      if (longest > maxInlineWaitMs) return { deferMs: longest - maxInlineWaitMs / 2 };
      let waitMs = 0;
      for (const { key, bucket } of buckets) {
        const reserved = reserveToken(bucket, levels.get(key), nowMs);
        levels.set(key, reserved.level);
        waitMs = Math.max(waitMs, reserved.waitMs);
      }
      return { waitMs };
    },
  };
}

export type OutboundLimits = ReturnType<typeof createOutboundLimits>;
