import {
  ClosedConnectionError,
  ConnectionError as NatsConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { JetStreamError } from "@nats-io/jetstream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import type { ZodIssue } from "zod";
import { ConnectionError as PgConnectionError, BackendTerminatedError, StatementTimeoutError } from "slonik";
import type { ErrorBody, ValidationIssue } from "../../contracts/http/common.js";
import { DomainError } from "../../domain/errors.js";
import { InvalidCursorError } from "../../projections/index.js";
import { ConcurrencyError } from "../../streams/event-store.js";
import * as E from "./errors.js";

const LOCATION: Record<string, string> = { body: "body", querystring: "query", params: "params", headers: "headers" };

/** Fastify's own 4xx errors (parsing, limits) by code. */
const FASTIFY_ERRORS: Record<string, (limit: number) => E.ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (limit) => E.payloadTooLarge(limit),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => E.unsupportedMediaType(),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => E.invalidRequest("the body is empty but content-type is application/json"),
  FST_ERR_CTP_INVALID_JSON_BODY: () => E.invalidRequest("the body is not valid JSON"),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => E.invalidRequest("content-length does not match the body"),
};

const NATS_ERRORS = [NatsConnectionError, ClosedConnectionError, DrainingConnectionError, TimeoutError, NoRespondersError, RequestError];
const PG_ERRORS = [PgConnectionError, BackendTerminatedError, StatementTimeoutError];

/** Which dependency an error says is unreachable, if any. */
export function unavailableDependency(error: unknown): "NATS" | "Postgres" | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (NATS_ERRORS.some((type) => e instanceof type)) return "NATS";
    if (e instanceof JetStreamError && /no responders|timeout|stream not found/i.test(e.message)) return "NATS";
    if (PG_ERRORS.some((type) => e instanceof type)) return "Postgres";
    if ((e as { code?: string }).code === "ECONNREFUSED") return "Postgres";
  }
  return null;
}

function validationError(error: FastifyError): E.ApiError {
  const context = (error as { validationContext?: string }).validationContext ?? "body";
  // A malformed id in the path names nothing that exists.
  if (context === "params") return E.notFound();
  const location = LOCATION[context] ?? context;
  const details: ValidationIssue[] = hasZodFastifySchemaValidationErrors(error)
    ? error.validation.map((v) => {
        const issue = v.params.issue as ZodIssue;
        return { path: [location, ...issue.path].join("."), message: issue.message };
      })
    : (error.validation ?? []).map((v) => ({ path: `${location}${v.instancePath.replace(/\//g, ".")}`, message: v.message ?? "invalid" }));
  return E.invalidRequest(`the request ${location} is invalid`, details);
}

/** Maps anything thrown while handling a request onto the closed set of {@link E.ApiError}s. */
export function toApiError(error: unknown, maxBodyBytes: number): E.ApiError {
  if (error instanceof E.ApiError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError?.validation) return validationError(fastifyError);
  if (error instanceof DomainError) {
    if (error.code === "not_found") return E.notFound(error.message);
    if (error.code === "conflict") return E.conflict(error.message);
    return E.unprocessable(error.message);
  }
  if (error instanceof ConcurrencyError) return E.conflict("the resource was changed concurrently; retry");
  if (error instanceof InvalidCursorError) return E.invalidRequest("invalid cursor", [{ path: "query.cursor", message: "not a cursor this api issued" }]);
  const known = fastifyError?.code ? FASTIFY_ERRORS[fastifyError.code] : undefined;
  if (known) return known(maxBodyBytes);
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) return E.invalidRequest("the body is not valid JSON");
  const dependency = unavailableDependency(error);
  if (dependency) return E.dependencyUnavailable(dependency);
  if (fastifyError?.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return E.invalidRequest("malformed request");
  }
  return E.internalError();
}

export function errorBody(error: E.ApiError, requestId: string): ErrorBody {
  const body: ErrorBody["error"] = { code: error.code, message: error.message, requestId };
  if (error.details !== undefined) body.details = error.details;
  return { error: body };
}

/** Sends an {@link E.ApiError} in the one error shape. */
export function sendError(reply: FastifyReply, error: E.ApiError): FastifyReply {
  if (error.headers) reply.headers(error.headers);
  return reply.status(error.status).type("application/json; charset=utf-8").send(errorBody(error, reply.request.id));
}

/** The app's error handler: logs what is not the caller's fault, answers in the one shape. */
export function createErrorHandler(maxBodyBytes: number) {
  return function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const apiError = toApiError(error, maxBodyBytes);
    if (apiError.status >= 500) request.log.error({ err: error, code: apiError.code }, "request failed");
    else request.log.info({ code: apiError.code, status: apiError.status }, "request refused");
    return sendError(reply, apiError);
  };
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return sendError(reply, E.notFound(`no route ${request.method} ${(request.url.split("?")[0] ?? "").slice(0, 200)}`));
}
