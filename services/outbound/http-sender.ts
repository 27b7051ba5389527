import { Agent, type Dispatcher } from "undici";
import type { Readable } from "node:stream";
import { redact } from "../../domain/redaction/redact.js";
import { processClock } from "../shared/process-clock.js";
import { compileTargetPolicy, type TargetPolicy } from "../../domain/targets/policy.js";
import { BLOCKED_TARGET_CODE, guardedConnector } from "./target-connector.js";

/** One outbound webhook attempt: always a POST, never redirected. */
export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** One deadline covering connect, headers and the whole (bounded) body read. */
  timeoutMs: number;
  /** Return the response's headers, redacted (a test send shows them; an attempt records none). */
  withResponseHeaders?: boolean;
}

/** `blocked_target`: the SSRF guard refused the address (nothing was sent); the domain treats it as dead. */
export type NetworkError = "timeout" | "connection_error" | "dns_error" | "blocked_target";

/** What happened on the wire. Exactly one of `statusCode` / `networkError` is set. */
export interface SendResult {
  startedAt: Date;
  /** Whole milliseconds from start until the body was read (or the failure). */
  latencyMs: number;
  statusCode?: number;
  networkError?: NetworkError;
  /** Short and secret-free: an error code such as "ECONNREFUSED", or "timed out after 1000 ms". */
  error?: string;
  /** The raw `Retry-After` header, when present. */
  retryAfter?: string;
  /** Asked for by `withResponseHeaders`: lower-cased names; repeated headers joined with ", "; values redacted. */
  responseHeaders?: Record<string, string>;
  /** The start of the response body, redacted, at most `snippetBytes` UTF-8 bytes. */
  responseSnippet?: string;
}

/** Port used by the delivery worker and test send. */
export interface HttpSender {
  /** Never throws for network failures: they come back as `networkError`. */
  send(req: OutboundRequest): Promise<SendResult>;
  /** Waits for in-flight requests (each bounded by its deadline), then closes every socket. */
  close(): Promise<void>;
}

export interface HttpSenderOptions {
  /** Sockets per origin (default 64), kept alive, no pipelining. */
  connectionsPerOrigin?: number;
  /** Response bytes read at most (default 20 KiB); the rest is never read. */
  maxBodyBytes?: number;
  /** Bytes of the (redacted) body kept as `responseSnippet` (default 1 KiB). */
  snippetBytes?: number;
  /** Connect timeout (default 10 s); the request deadline caps it too. */
  connectTimeoutMs?: number;
  /**
   * The SSRF guard: by default only global unicast addresses are dialled, checked on the address
   * each connection actually uses (after DNS). `{allowPrivate: true}` turns it off; `allowedCidrs`
   * lets chosen ranges through. An invalid CIDR throws here, at start-up.
   */
  targetPolicy?: TargetPolicy;
}

/** How much later than the deadline undici's own wall-clock timeouts stop a request nobody aborted. */
const BACKSTOP_MARGIN_MS = 30_000;
const SECRET_HEADERS = new Set(["set-cookie", "cookie", "authorization", "proxy-authorization"]);
const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_ABORTED",
  "ABORT_ERR",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
]);
/** The connection failed under a request: closed or reset by the other side. */
const SOCKET_CODES = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);
const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL", "EAI_NODATA", "ENODATA"]);

export function createHttpSender(options: HttpSenderOptions = {}): HttpSender {
  const maxBodyBytes = options.maxBodyBytes ?? 20 * 1024;
  const snippetBytes = Math.min(options.snippetBytes ?? 1024, maxBodyBytes);
  const connectTimeout = options.connectTimeoutMs ?? 10_000;
  const rules = compileTargetPolicy(options.targetPolicy);
  // undici 7 never follows redirects unless the redirect interceptor is composed in: we don't.
  const newAgent = () =>
    new Agent({
      connections: options.connectionsPerOrigin ?? 64,
      pipelining: 1,
      connectTimeout,
      // A connector function replaces undici's own, so it carries the connect timeout itself.
      ...(rules.guarded ? { connect: guardedConnector(rules, { timeout: connectTimeout }) } : {}),
    });
  let agent = newAgent();
  let agentLongStalls = processClock.longStalls();
  /**
   * After the process stood still for seconds (SIGSTOP, a paused VM), receivers may have closed
   * the idle keep-alive sockets meanwhile without this process seeing it: a request written to one
   * fails as a network error, and a few of them open the circuit. New requests go to a fresh pool;
   * the old one closes once its requests in flight end.
   */
  const currentAgent = () => {
    const longStalls = processClock.longStalls();
    if (longStalls !== agentLongStalls) {
      const stale = agent;
      agent = newAgent();
      agentLongStalls = longStalls;
      void stale.close().catch(() => undefined);
    }
    return agent;
  };

  async function send(req: OutboundRequest): Promise<SendResult> {
    const startedAt = new Date();
    const t0 = performance.now();
    const elapsed = () => Math.round(performance.now() - t0);
    const controller = new AbortController();
    // The deadline runs on the process clock: a freeze of this process is not the receiver's time,
    // and a timer overdue after one fires before the answer already waiting in the socket is read.
    const deadlineAt = processClock.now() + req.timeoutMs;
    let timer: NodeJS.Timeout;
    const expireAtDeadline = () => {
      const leftMs = deadlineAt - processClock.now();
      if (leftMs <= 0) controller.abort();
      else timer = setTimeout(expireAtDeadline, leftMs);
    };
    timer = setTimeout(expireAtDeadline, req.timeoutMs);
    const request = (url: URL) =>
      currentAgent().request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: "POST",
        headers: req.headers,
        body: req.body,
        signal: controller.signal,
        // backstops, on the wall clock: the abort signal above is the real, total deadline
        headersTimeout: req.timeoutMs + BACKSTOP_MARGIN_MS,
        bodyTimeout: req.timeoutMs + BACKSTOP_MARGIN_MS,
      });
    const longStallsAtStart = processClock.longStalls();
    try {
      const url = new URL(req.url);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url);
      } catch (err) {
        // Written (or about to be) when the process froze, on a socket the receiver closed as idle
        // meanwhile: this process's fault, not the endpoint's. Once more, on a fresh connection.
        if (processClock.longStalls() === longStallsAtStart || controller.signal.aborted || !errorCodes(err).some((c) => SOCKET_CODES.has(c))) throw err;
        res = await request(url);
      }
      const body = await readBounded(res.body, maxBodyBytes);
      const result: SendResult = { startedAt, latencyMs: elapsed(), statusCode: res.statusCode };
      const retryAfter = res.headers["retry-after"];
      if (retryAfter !== undefined) result.retryAfter = Array.isArray(retryAfter) ? retryAfter.join(", ") : retryAfter;
      if (req.withResponseHeaders) result.responseHeaders = redactHeaders(flattenHeaders(res.headers));
      if (body.length > 0) result.responseSnippet = truncateUtf8(redact(body.toString("utf8")), snippetBytes);
      return result;
    } catch (err) {
      return { startedAt, latencyMs: elapsed(), ...classify(err, controller.signal.aborted, req.timeoutMs) };
    } finally {
      clearTimeout(timer);
    }
  }

  return { send, close: () => agent.close() };
}

/** Reads at most `limit` bytes, then destroys the body so the socket is released either way. */
async function readBounded(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = limit - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (size >= limit) break; // leaving the loop destroys the stream
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
  return Buffer.concat(chunks, size);
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = SECRET_HEADERS.has(name) ? "[REDACTED]" : redact(value);
  }
  return out;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--; // don't split a multi-byte character
  return buf.subarray(0, end).toString("utf8");
}

function classify(err: unknown, deadlinePassed: boolean, timeoutMs: number): Pick<SendResult, "networkError" | "error"> {
  const timedOut = { networkError: "timeout", error: `timed out after ${timeoutMs} ms` } as const;
  const codes = errorCodes(err);
  // Checked first: a refusal is final, whatever else went wrong around it.
  if (codes.includes(BLOCKED_TARGET_CODE)) return { networkError: "blocked_target", error: blockedReason(err) };
  if (deadlinePassed) return timedOut;
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return timedOut;
  const dns = codes.find((c) => DNS_CODES.has(c));
  if (dns) return { networkError: "dns_error", error: dns };
  // ECONNREFUSED, ECONNRESET, EPIPE, UND_ERR_SOCKET ("other side closed"), unreachable hosts, bad URLs…
  const code = codes.find((c) => !c.startsWith("UND_ERR_")) ?? codes[0];
  return { networkError: "connection_error", error: code ?? shortMessage(err) };
}

/** The error, its causes and (AggregateError from happy eyeballs) its inner errors. */
function errorChain(err: unknown, depth = 0): object[] {
  if (depth > 4 || typeof err !== "object" || err === null) return [];
  const e = err as { cause?: unknown; errors?: unknown };
  const inner = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorChain(x, depth + 1)) : [];
  return [err, ...errorChain(e.cause, depth + 1), ...inner];
}

function errorCodes(err: unknown): string[] {
  return errorChain(err).flatMap((e) => {
    const { code, name } = e as { code?: unknown; name?: unknown };
    return typeof code === "string" ? [code] : name === "TimeoutError" || name === "AbortError" ? ["ABORT_ERR"] : [];
  });
}

/** The guard's own message: it names the refused range, never the address. */
function blockedReason(err: unknown): string {
  const blocked = errorChain(err).find((e) => (e as { code?: unknown }).code === BLOCKED_TARGET_CODE);
  return blocked instanceof Error ? blocked.message : "target address is not allowed";
}

function shortMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return redact(message).slice(0, 120) || "unknown error";
}
