import { ErrorBody } from "../../../contracts/http/common.js";
import type { RegistryPort } from "../deps.js";
import * as E from "../errors.js";

/** How long a command waits for the registry view to show its own change. */
export const VIEW_WAIT_MS = 5_000;

/** The error responses a route documents, all in the one error shape. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorBody]));
}

/** Errors every tenant route may answer besides its own. */
export const TENANT_ERRORS = [400, 401, 403, 503] as const;

/** The quotas when the configuration names none (`ZEN_MAX_ENDPOINTS_PER_TENANT`, `ZEN_MAX_SOURCES_PER_TENANT`). */
export const DEFAULT_QUOTAS = { maxEndpoints: 1_000, maxSources: 100 };

/**
 * Refuses one more endpoint or source past the tenant's quota (its own limit, else the platform's),
 * counted in the registry view: api processes creating at the same moment may pass it by the few in flight.
 */
export function assertUnderQuota(view: RegistryPort, tenantId: string, kind: "endpoints" | "sources", defaults = DEFAULT_QUOTAS): void {
  const tenant = view.tenant(tenantId);
  const limits = tenant?.status === "active" ? tenant.limits : {};
  const limit = kind === "endpoints" ? (limits.maxEndpoints ?? defaults.maxEndpoints) : (limits.maxSources ?? defaults.maxSources);
  if (view.liveCounts(tenantId)[kind] >= limit) throw E.quotaExceeded(kind, limit);
}
