import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";
import { HEADERS } from "../../contracts/http/common.js";
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER } from "../../contracts/http/replay.js";
import { errorBody } from "./error-handler.js";
import { ApiError } from "./errors.js";

/** Request line plus headers allowed by default (`ZEN_MAX_HEADER_BYTES`); above it, 431. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

/**
 * Errors Node's HTTP parser meets before fastify sees a request (no route, no hooks): answered in
 * the one error shape with a fresh request id, then the connection is closed.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed || !socket.writable) return;
  const apiError =
    error.code === "HPE_HEADER_OVERFLOW"
      ? new ApiError(431, "headers_too_large", "the request headers are too large")
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new ApiError(408, "invalid_request", "the request took too long to arrive")
        : new ApiError(400, "invalid_request", "malformed HTTP request");
  const requestId = randomUUID();
  const body = JSON.stringify(errorBody(apiError, requestId));
  socket.end(
    `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${HEADERS.requestId}: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Helmet's headers for an API: a CSP that loads nothing and may not be framed, nosniff, no
 * referrer, HSTS, and the rest of its defaults. They never vary, so they are set as one constant
 * object: helmet's middleware chain rebuilt them on every request, 7 % of an ingest's CPU.
 */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none';frame-ancestors 'none'",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-site",
  "origin-agent-cluster": "?1",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "SAMEORIGIN",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0",
} as const;

/**
 * Security headers on every answer (the docs pages replace the CSP with their own, see `docs.ts`),
 * and CORS for the configured origins only (none by default). Registered before the routes; CORS's
 * preflight route needs no credential.
 */
export async function registerHardening(app: FastifyInstance, corsOrigins: readonly string[]): Promise<void> {
  app.addHook("onRequest", (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    done();
  });
  await app.register(cors, {
    origin: corsOrigins.length > 0 ? [...corsOrigins] : false,
    methods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: [
      "authorization",
      "content-type",
      HEADERS.tenantId,
      HEADERS.requestId,
      HEADERS.minSeq,
      HEADERS.contractVersion,
      IDEMPOTENCY_KEY_HEADER,
      "traceparent",
    ],
    exposedHeaders: [
      HEADERS.requestId,
      HEADERS.seq,
      HEADERS.contractVersion,
      HEADERS.retryAfter,
      IDEMPOTENT_REPLAYED_HEADER,
      "ratelimit-limit",
      "ratelimit-remaining",
      "ratelimit-reset",
    ],
    maxAge: 600,
  });
}
