import pLimit, { type LimitFunction } from "p-limit";

/**
 * Each tenant's share of a dispatcher's `slots` attempts in flight: at most `shareOf(tenantId)`
 * at once (read on each attempt, so an operator's change applies to the next), and never more than
 * half of the slots other tenants leave (rounded up), so tenants hanging together cannot take
 * every slot either: the first takes at most half, the next half of the rest, and so on, and a
 * tenant arriving after seven of them still finds one. The rest of a tenant's attempts wait in its
 * own line (first come, first served), each counted by `onHeldBack`; the process's global limit
 * sits behind it. A tenant's line is dropped once it is empty.
 */
export function createTenantShares(slots: number, shareOf: (tenantId: string) => number, onHeldBack?: () => void) {
  const lines = new Map<string, LimitFunction>();
  let inFlight = 0;
  const counted = async <T>(work: () => Promise<T>): Promise<T> => {
    inFlight++;
    try {
      return await work();
    } finally {
      inFlight--;
    }
  };
  return {
    run<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
      let line = lines.get(tenantId);
      const leftByOthers = slots - (inFlight - (line?.activeCount ?? 0));
      const share = Math.max(1, Math.min(shareOf(tenantId), Math.ceil(leftByOthers / 2)));
      if (!line) {
        line = pLimit(share);
        lines.set(tenantId, line);
      } else if (line.concurrency !== share) line.concurrency = share;
      const own = line;
      if (own.activeCount + own.pendingCount >= share) onHeldBack?.();
      return own(() => counted(work)).finally(() => {
        if (own.activeCount === 0 && own.pendingCount === 0 && lines.get(tenantId) === own) lines.delete(tenantId);
      });
    },
    /** Tenants with attempts in flight or waiting (for tests and gauges). */
    tenants: () => lines.size,
  };
}
