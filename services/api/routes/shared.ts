import { ownLimit } from "../../../domain/tenant/tenant.js";
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

/** The quotas when the configuration names none (`ZEN_MAX_ENDPOINTS_PER_TENANT`, `ZEN_MAX_SOURCES_PER_TENANT`, …). */
export const DEFAULT_QUOTAS = { maxEndpoints: 1_000, maxSources: 100, testSendsPerMinute: 60, maxReplaysInFlight: 5 };

/** A tenant's quota: its own limit if the operator set one, else the platform's. */
export function quotaOf(view: RegistryPort, tenantId: string, quota: keyof typeof DEFAULT_QUOTAS, defaults = DEFAULT_QUOTAS): number {
  return ownLimit(view.tenant(tenantId), quota) ?? defaults[quota];
}

/**
 * Refuses one more endpoint or source past the tenant's quota (its own limit, else the platform's),
 * counted in the registry view: api processes creating at the same moment may pass it by the few in flight.
 */
export function assertUnderQuota(view: RegistryPort, tenantId: string, kind: "endpoints" | "sources", defaults = DEFAULT_QUOTAS): void {
  const limit = quotaOf(view, tenantId, kind === "endpoints" ? "maxEndpoints" : "maxSources", defaults);
  if (view.liveCounts(tenantId)[kind] >= limit) throw E.quotaExceeded(kind, limit);
}
