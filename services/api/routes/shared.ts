import { ErrorBody } from "../../../contracts/http/common.js";

/** How long a command waits for the registry view to show its own change. */
export const VIEW_WAIT_MS = 5_000;

/** The error responses a route documents, all in the one error shape. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorBody]));
}

/** Errors every tenant route may answer besides its own. */
export const TENANT_ERRORS = [400, 401, 403, 503] as const;
