import pLimit, { type LimitFunction } from "p-limit";

/**
 * Each tenant's share of a dispatcher's attempts in flight: at most `shareOf(tenantId)` at once
 * (read on each attempt, so an operator's change applies to the next), the rest of a tenant's
 * attempts waiting in its own line (first come, first served). The process's global limit sits
 * behind it, so a tenant whose endpoints all hang holds at most its share and every other tenant
 * keeps the rest. A tenant's line is dropped once it is empty.
 */
export function createTenantShares(shareOf: (tenantId: string) => number) {
  const lines = new Map<string, LimitFunction>();
  return {
    run<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
      const share = shareOf(tenantId);
      let line = lines.get(tenantId);
      if (!line) {
        line = pLimit(share);
        lines.set(tenantId, line);
      } else if (line.concurrency !== share) line.concurrency = share;
      const own = line;
      return own(work).finally(() => {
        if (own.activeCount === 0 && own.pendingCount === 0 && lines.get(tenantId) === own) lines.delete(tenantId);
      });
    },
    /** Tenants with attempts in flight or waiting (for tests and gauges). */
    tenants: () => lines.size,
  };
}
