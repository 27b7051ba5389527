import { pino, type DestinationStream, type Logger } from "pino";

/** Paths the logger blanks whatever they hold, so a secret passed by mistake never reaches a log line. */
const REDACTED_PATHS = [
  "secret",
  "*.secret",
  "apiKey",
  "*.apiKey",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "webhook-signature",
  "*.webhook-signature",
];

/** A pino logger that redacts by itself; `destination` defaults to stdout (tests capture lines). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { service: "zen-webhooks" }, redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" } };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
