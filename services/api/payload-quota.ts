import { ownLimit } from "../../domain/tenant/tenant.js";
import type { SharedBuckets } from "../shared/shared-buckets.js";
import type { RegistryPort } from "./deps.js";
import * as E from "./errors.js";

/** A tenant's payload allowance: bytes a second (a burst of one second's worth) and bytes a day. */
export interface PayloadLimits {
  payloadBytesPerSecond: number;
  payloadBytesPerDay: number;
}

/** The platform's defaults (`ZEN_PAYLOAD_BYTES_PER_SECOND`, `ZEN_PAYLOAD_BYTES_PER_DAY`): 8 MiB/s, 16 GiB a day. */
export const DEFAULT_PAYLOAD_LIMITS: PayloadLimits = { payloadBytesPerSecond: 8 * 1024 ** 2, payloadBytesPerDay: 16 * 1024 ** 3 };

const DAY_SECONDS = 86_400;

/** A tenant's payload limits: its own where the operator set them, else the platform's. */
export function payloadLimitsOf(view: Pick<RegistryPort, "tenant">, tenantId: string, defaults: PayloadLimits): PayloadLimits {
  const tenant = view.tenant(tenantId);
  return {
    payloadBytesPerSecond: ownLimit(tenant, "payloadBytesPerSecond") ?? defaults.payloadBytesPerSecond,
    payloadBytesPerDay: ownLimit(tenant, "payloadBytesPerDay") ?? defaults.payloadBytesPerDay,
  };
}

const retryAfter = (waitMs: number) => Math.max(1, Math.ceil(waitMs / 1_000));

/**
 * Spends a request's payload bytes from the tenant's two buckets, shared by every api process: a
 * second's (capacity = the per-second limit) and a day's (capacity = the daily limit, refilled
 * evenly over 24 h: a rolling day). Past either, 429 `rate_limited` naming the quota, and nothing
 * is spent of the other; a payload larger than either whole bucket is 422 `quota_exceeded`.
 */
export async function spendPayloadBytes(buckets: SharedBuckets, tenantId: string, bytes: number, limits: PayloadLimits): Promise<void> {
  // Larger than a whole bucket: no wait would ever let it through.
  if (bytes > limits.payloadBytesPerSecond) throw E.payloadOverQuota("payload_bytes_per_second", bytes, limits.payloadBytesPerSecond);
  if (bytes > limits.payloadBytesPerDay) throw E.payloadOverQuota("payload_bytes_per_day", bytes, limits.payloadBytesPerDay);
  const perSecond = { capacity: limits.payloadBytesPerSecond, refillPerSecond: limits.payloadBytesPerSecond };
  const second = await buckets.take(`${tenantId}.second`, perSecond, Date.now(), bytes);
  if (!second.allowed) {
    throw E.quotaRateLimited(
      "payload_bytes_per_second",
      `the tenant's payloads are limited to ${limits.payloadBytesPerSecond} bytes a second`,
      limits.payloadBytesPerSecond,
      retryAfter(second.waitMs),
    );
  }
  const perDay = { capacity: limits.payloadBytesPerDay, refillPerSecond: limits.payloadBytesPerDay / DAY_SECONDS };
  const day = await buckets.take(`${tenantId}.day`, perDay, Date.now(), bytes);
  if (!day.allowed) {
    buckets.giveBack(`${tenantId}.second`, second.serial, Date.now(), bytes);
    throw E.quotaRateLimited(
      "payload_bytes_per_day",
      `the tenant's payloads are limited to ${limits.payloadBytesPerDay} bytes a day`,
      limits.payloadBytesPerDay,
      retryAfter(day.waitMs),
    );
  }
}
