import { z } from "zod";

/** The contract version this server speaks; answered on every response (API.md "Conventions"). */
export const CONTRACT_VERSION = "1";

/** Request and response headers of the public contract, lower-cased as Node exposes them. */
export const HEADERS = {
  requestId: "x-request-id",
  tenantId: "x-tenant-id",
  contractVersion: "x-zen-contract-version",
  seq: "x-zen-seq",
  minSeq: "x-zen-min-seq",
  retryAfter: "retry-after",
} as const;

/** The stable error codes of API.md; a client switches on these, never on `message`. */
export const ErrorCode = z.enum([
  "invalid_request",
  "tenant_header_required",
  "idempotency_key_required",
  "unsupported_contract_version",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "idempotency_conflict",
  "idempotency_key_in_use",
  "duplicate_event",
  "payload_too_large",
  "headers_too_large",
  "unsupported_media_type",
  "unprocessable",
  "rate_limited",
  "quota_exceeded",
  "internal_error",
  "dependency_unavailable",
  "read_model_behind",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** One validation problem: where (`body.url`, `query.limit`) and what. */
export const ValidationIssue = z
  .object({
    path: z.string().describe("Where the problem is, e.g. `body.eventTypes.0` or `query.limit`"),
    message: z.string(),
  })
  .describe("One validation problem");
export type ValidationIssue = z.infer<typeof ValidationIssue>;

/** The body of every error response. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: ErrorCode.describe("Stable, snake_case error code"),
      message: z.string().describe("Human-readable text; may change between versions"),
      requestId: z.string().describe("The request id (also in the X-Request-Id header)"),
      details: z.unknown().optional().describe("For invalid_request: the issues, each {path, message}; for duplicate_event: {messageId}"),
    }),
  })
  .describe("Error response");
export type ErrorBody = z.infer<typeof ErrorBody>;

/** `?limit=&cursor=` of every list. */
export const PageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50).describe("Page size, 1–500"),
    cursor: z.string().min(1).max(500).optional().describe("The `nextCursor` of the previous page"),
  })
  .strict();
export type PageQuery = z.infer<typeof PageQuery>;

/** The list envelope: one page and the cursor of the next (null on the last page). */
export const ListOf = <T extends z.ZodTypeAny>(item: T) =>
  z.object({
    data: z.array(item),
    nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null when there is none"),
  });

/** An ISO 8601 UTC timestamp. */
export const Timestamp = z.string().describe("ISO 8601 UTC timestamp");

/** The documented answer of a 204. */
export const NoContent = z.null().describe("No content");
