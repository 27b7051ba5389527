import type { RetryPolicy } from "../../contracts/common.js";
import { parseHttpDate } from "./http-date.js";

/** The longest a receiver's `Retry-After` can push a retry back (API.md: at most 1 h). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** Jitter spreads retries by ±20 % so endpoints that failed together do not retry together. */
export const JITTER_RATIO = 0.2;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * Delay before the retry that follows failed attempt `failedAttempt` (1-based):
 * `initialDelayMs * factor^(failedAttempt-1)`, capped at `maxDelayMs`, scaled by a jitter factor in
 * [0.8, 1.2] taken from `random` ∈ [0, 1) (0 → 0.8, 0.5 → 1.0), capped again and rounded.
 */
export const backoffDelayMs = (policy: RetryPolicy, failedAttempt: number, random: number): number => {
  const exponent = Math.max(0, failedAttempt - 1);
  const raw = policy.initialDelayMs * policy.factor ** exponent;
  // A huge exponent overflows to Infinity (and 0 × Infinity is NaN): both mean "the cap".
  const base = Number.isFinite(raw) ? Math.min(policy.maxDelayMs, raw) : policy.maxDelayMs;
  const jitter = 1 - JITTER_RATIO + 2 * JITTER_RATIO * clamp(random, 0, 1);
  return Math.round(Math.min(policy.maxDelayMs, base * jitter));
};

/**
 * A `Retry-After` header in milliseconds from `now`: integer seconds or an HTTP-date. A negative
 * number or a date in the past means "now" (0); anything else is ignored (undefined). Not capped
 * here: the retry rule bounds it by {@link MAX_RETRY_AFTER_MS}.
 */
export const parseRetryAfterMs = (header: string | undefined, now: Date): number | undefined => {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^-?\d+$/.test(value)) return Math.max(0, Number(value) * 1000);
  const at = parseHttpDate(value, now);
  return at === undefined ? undefined : Math.max(0, at - now.getTime());
};
