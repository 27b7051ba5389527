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
        ? requestTooSlow()
        : new ApiError(400, "invalid_request", "malformed HTTP request");
  answerAndClose(socket, apiError);
}

const requestTooSlow = () => new ApiError(408, "invalid_request", "the request took too long to arrive");

/** Writes `apiError` in the one error shape with a fresh request id, and closes the connection. */
function answerAndClose(socket: Socket, apiError: ApiError): void {
  const requestId = randomUUID();
  const body = JSON.stringify(errorBody(apiError, requestId));
  socket.end(
    `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${HEADERS.requestId}: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
  socket.destroySoon();
}

/**
 * A whole request (headers and body) must arrive within `requestMs`: Node's own `requestTimeout`
 * stops counting once the headers are in, so a body trickled a byte at a time held a connection
 * (and a handler) for as long as the client liked. Past the deadline it is answered 408 and the
 * connection closed; the deadline ends once the body is parsed (before validation) or an answer
 * went out before it was read.
 */
export function registerRequestDeadline(app: FastifyInstance, requestMs: number): void {
  const deadlines = new WeakMap<object, NodeJS.Timeout>();
  app.addHook("onRequest", (request, _reply, done) => {
    const socket = request.raw.socket;
    deadlines.set(
      request,
      setTimeout(() => {
        if (!socket.destroyed && socket.writable) answerAndClose(socket, requestTooSlow());
      }, requestMs),
    );
    done();
  });
  const end = (request: object, _reply: unknown, done: () => void) => {
    clearTimeout(deadlines.get(request));
    done();
  };
  app.addHook("preValidation", end);
  app.addHook("onResponse", end);
  app.addHook("onRequestAbort", (request, done) => end(request, undefined, done));
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
