import pLimit, { type LimitFunction } from "p-limit";

/**
 * Each tenant's share of a dispatcher's attempts in flight: at most `perTenant` at once, the rest
 * of a tenant's attempts waiting in its own line (first come, first served). The process's global
 * limit sits behind it, so a tenant whose endpoints all hang holds at most its share and every
 * other tenant keeps the rest. A tenant's line is dropped once it is empty.
 */
export function createTenantShares(perTenant: number) {
  const lines = new Map<string, LimitFunction>();
  return {
    run<T>(tenantId: string, work: () => Promise<T>): Promise<T> {
      let line = lines.get(tenantId);
      if (!line) {
        line = pLimit(perTenant);
        lines.set(tenantId, line);
      }
      const own = line;
      return own(work).finally(() => {
        if (own.activeCount === 0 && own.pendingCount === 0 && lines.get(tenantId) === own) lines.delete(tenantId);
      });
    },
    /** Tenants with attempts in flight or waiting (for tests and gauges). */
    tenants: () => lines.size,
  };
}
