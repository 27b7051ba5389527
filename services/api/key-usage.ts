import type { Logger } from "pino";
import { apiKeyDecider } from "../../domain/apikey/apikey.js";
import type { EventStore } from "../../streams/event-store.js";

/** How often one process records a key's use: `lastUsedAt` is accurate to this. */
export const KEY_USE_INTERVAL_MS = 3_600_000;

/** Records that a key authenticated a request, cheaply; never fails or slows the request. */
export interface KeyUsage {
  touch(tenantId: string, keyId: string, now: Date): void;
  /** Resolves once every recording started so far has finished (tests, shutdown). */
  settled(): Promise<void>;
}

/**
 * `apikey.used` at most once per key per hour per process: the first use in each hour appends
 * one event (its `usedAt` the hour's start, its message id derived from key and hour, so several
 * processes in the same hour mostly collapse into one by JetStream's duplicate window). The read
 * models fold it like any other event, so `lastUsedAt` is rebuilt with them.
 */
export function createKeyUsage(store: EventStore, logger: Logger, intervalMs = KEY_USE_INTERVAL_MS): KeyUsage {
  const recorded = new Map<string, number>();
  const pending = new Set<Promise<void>>();

  return {
    touch(tenantId, keyId, now) {
      const slot = Math.floor(now.getTime() / intervalMs) * intervalMs;
      if ((recorded.get(keyId) ?? -1) >= slot) return;
      recorded.set(keyId, slot);
      const at = new Date(slot).toISOString();
      const ref = { tenantId, aggregateType: "apikey" as const, aggregateId: keyId };
      const context = { correlationId: `${keyId}.used.${slot}`, causationId: null, actor: { kind: "apikey" as const, id: keyId }, now };
      const work = store
        .handle(ref, apiKeyDecider, { type: "RecordApiKeyUse", at }, { causeId: `${keyId}.used.${slot}`, context })
        .then(
          () => undefined,
          (error: unknown) => {
            // Try again on the next request rather than lose the hour.
            recorded.delete(keyId);
            logger.warn({ err: error, tenantId, keyId }, "could not record an api key's use");
          },
        )
        .finally(() => pending.delete(work));
      pending.add(work);
    },
    async settled() {
      await Promise.all([...pending]);
    },
  };
}
