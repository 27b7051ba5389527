import type { TokenBucket } from "../../contracts/common.js";

/** A bucket's level at a moment: `tokens` may go below zero, each missing token a reserved future slot. */
export interface BucketLevel {
  tokens: number;
  atMs: number;
}

/** The level at `nowMs`, refilled since it was last taken from and capped at the capacity. */
export const levelAt = (bucket: TokenBucket, level: BucketLevel | undefined, nowMs: number): BucketLevel => {
  if (!level) return { tokens: bucket.capacity, atMs: nowMs };
  const refilled = level.tokens + ((nowMs - level.atMs) / 1000) * bucket.refillPerSecond;
  return { tokens: Math.min(bucket.capacity, refilled), atMs: nowMs };
};

/** How long until `tokens` (one unless said) are free at `level` (0: they are free now). */
export const waitForToken = (bucket: TokenBucket, level: BucketLevel, tokens = 1): number =>
  level.tokens >= tokens ? 0 : Math.ceil(((tokens - level.tokens) / bucket.refillPerSecond) * 1000);

/** An endpoint's `rateLimit.perSecond` as a bucket: a burst of at most a tenth of a second's worth. */
export const perSecondBucket = (perSecond: number): TokenBucket => ({
  capacity: Math.max(1, Math.floor(perSecond / 10)),
  refillPerSecond: perSecond,
});
