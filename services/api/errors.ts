import type { ErrorCode, ValidationIssue } from "../../contracts/http/common.js";

/**
 * The one error type of the api: a status, a stable code, a message safe to show, and optional
 * details. Everything else thrown in a handler is mapped onto it by `error-handler.ts`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const invalidRequest = (message: string, details?: ValidationIssue[]) => new ApiError(400, "invalid_request", message, details);
export const tenantHeaderRequired = () => new ApiError(400, "tenant_header_required", "this route needs the X-Tenant-Id header");
export const unsupportedContractVersion = (version: string) =>
  new ApiError(400, "unsupported_contract_version", `contract version ${JSON.stringify(version)} is not supported; this server speaks 1`);
export const idempotencyKeyRequired = () => new ApiError(400, "idempotency_key_required", "this route needs the Idempotency-Key header");
export const idempotencyConflict = () => new ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different request (method, path or body)");
export const idempotencyKeyOfAnother = () =>
  new ApiError(409, "idempotency_conflict", "this Idempotency-Key was used by another credential, and its answer holds a secret shown only to that one");
export const idempotencyKeyInUse = () =>
  new ApiError(409, "idempotency_key_in_use", "a request with this Idempotency-Key is still being processed; retry shortly", undefined, { "retry-after": "1" });
export const rateLimited = (retryAfterSeconds: number, headers: Record<string, string>) =>
  new ApiError(429, "rate_limited", "too many requests; slow down", undefined, { ...headers, "retry-after": String(retryAfterSeconds) });
/** A quota of things at once or per time reached: 429 `rate_limited`, naming the quota and its limit, with `Retry-After`. */
export const quotaRateLimited = (quota: string, message: string, limit: number, retryAfterSeconds: number) =>
  new ApiError(429, "rate_limited", message, { quota, limit }, { "retry-after": String(retryAfterSeconds) });
/** One request larger than a whole bucket of a tenant's byte quota: it can never pass, so 422, not 429. */
export const payloadOverQuota = (quota: string, bytes: number, limit: number) =>
  new ApiError(422, "quota_exceeded", `a payload of ${bytes} bytes is larger than the tenant's whole ${quota} quota of ${limit}; ask the operator to raise it`, {
    quota,
    limit,
  });
/** A tenant quota reached: 422 `quota_exceeded`, naming the quota and its limit. */
export const quotaExceeded = (quota: string, limit: number) =>
  new ApiError(422, "quota_exceeded", `the tenant's ${quota} quota of ${limit} is reached; remove one, or ask the operator to raise it`, { quota, limit });
export const unauthorized = (message = "missing or invalid credentials") => new ApiError(401, "unauthorized", message);
export const forbidden = (message: string) => new ApiError(403, "forbidden", message);
export const notFound = (message = "not found") => new ApiError(404, "not_found", message);
export const conflict = (message: string) => new ApiError(409, "conflict", message);
export const duplicateEvent = (messageId: string) =>
  new ApiError(409, "duplicate_event", "an event with this eventId was accepted within the last 24 hours", { messageId });
export const payloadTooLarge = (limit: number) => new ApiError(413, "payload_too_large", `request body exceeds ${limit} bytes`);
export const unsupportedMediaType = () => new ApiError(415, "unsupported_media_type", "request bodies must be application/json");
export const unprocessable = (message: string) => new ApiError(422, "unprocessable", message);
export const internalError = () => new ApiError(500, "internal_error", "internal error");
export const dependencyUnavailable = (what: string) =>
  new ApiError(503, "dependency_unavailable", `${what} is unavailable; retry shortly`, undefined, { "retry-after": "1" });
export const readModelBehind = (seq: number) =>
  new ApiError(503, "read_model_behind", `the read models have not reached sequence ${seq} yet; retry shortly`, undefined, {
    "retry-after": "1",
  });
