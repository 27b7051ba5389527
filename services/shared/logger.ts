import { pino, stdSerializers, type DestinationStream, type Logger, type LoggerOptions } from "pino";
import { redact, redactObject, type RedactOptions } from "../../domain/redaction/redact.js";

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

export interface LoggerRedaction {
  /** Exact strings the redaction leaves intact (`ZEN_REDACT_ALLOW`), e.g. a support address. */
  allow?: readonly string[];
}

/**
 * A pino logger that redacts by itself, in two layers: the paths above are blanked whatever they
 * hold; and every string of a line (the message, plain fields at any depth, an error's message and
 * stack) goes through the redaction module (`domain/redaction/redact.ts`: emails, bearer and basic
 * credentials, API keys, webhook secrets, Slack and GitHub tokens, credentials in URLs, IP
 * addresses), and fields named like secrets are blanked at any depth. `destination` defaults to
 * stdout (tests capture lines).
 */
export function createLogger(level: string, destination?: DestinationStream, redaction: LoggerRedaction = {}): Logger {
  const rules: RedactOptions = { allow: redaction.allow ?? [] };
  const options: LoggerOptions = {
    level,
    base: { service: "zen-webhooks" },
    redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" },
    // Plain objects only: an Error goes to its serializer below, anything else to its own.
    formatters: { log: (object) => redactObject(object, { ...rules, plainOnly: true }) },
    serializers: { err: (error: Error) => redactObject(stdSerializers.err(error), rules) },
    hooks: {
      logMethod(args, method) {
        const redacted = args.map((arg: unknown) => (typeof arg === "string" ? redact(arg, rules) : arg));
        method.apply(this, redacted as Parameters<typeof method>);
      },
    },
  };
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
