import { pino, type Logger } from "pino";

/** Paths the logger blanks whatever they hold, so a secret passed by mistake never reaches a log line. */
const REDACTED_PATHS = [
  "secret",
  "*.secret",
  "key",
  "*.key",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "webhook-signature",
  "*.webhook-signature",
];

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: "zen-webhooks", ...base }, redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" } });
}

export type { Logger };
