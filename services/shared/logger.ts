import { pino, type DestinationStream, type Logger } from "pino";

/** Field names that hold credentials or key material, blanked at the top and one level down. */
const SECRET_FIELDS = ["secret", "secrets", "key", "apiKey", "masterKey", "token", "password", "authorization"];

/**
 * Paths the logger blanks whatever they hold, so a secret passed by mistake never reaches a log line.
 * pino's paths are exact (a `*` is one level, and each costs a walk of the object on every line, so
 * they are few): the secret fields at the top and one level down; credential headers under `req`
 * and `res` (fastify's serializers), under `headers`, and one level deeper (an error's `headers`).
 */
export const REDACTED_PATHS = [
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]),
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["webhook-signature"]',
  'headers["webhook-signature"]',
  '["webhook-signature"]',
  '*["webhook-signature"]',
];

/** A pino logger that redacts by itself; `destination` defaults to stdout (tests capture lines). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: "zen-webhooks" }, redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" } };
  return destination ? pino(options, destination) : pino(options);
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * `{ traceId }` of a W3C `traceparent` (a command context's or a stored event's, when tracing put
 * one there), to spread into a log line; empty when there is none.
 */
export function traceFields(carrier: { traceparent?: string } | undefined): { traceId?: string } {
  const match = carrier?.traceparent ? TRACEPARENT.exec(carrier.traceparent) : null;
  return match ? { traceId: match[1]! } : {};
}

export type { Logger };
