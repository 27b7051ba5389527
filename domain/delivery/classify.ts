import type { ErrorClass } from "../../contracts/events.js";

/** Failures that happen before any HTTP status arrives. */
export type NetworkError = "timeout" | "connection_error" | "dns_error" | "blocked_target";

/** What one outbound attempt produced, as far as the retry rule cares. */
export interface AttemptResult {
  statusCode?: number;
  networkError?: NetworkError;
  /** The receiver's `Retry-After`, already converted to milliseconds. */
  retryAfterMs?: number;
}

/** Whether an attempt is done with, worth retrying, or hopeless. */
export type Verdict = "success" | "retry" | "dead";

/** The verdict on one attempt (API.md "Delivery outcomes and the retry policy"). */
export interface Classification {
  errorClass: ErrorClass;
  verdict: Verdict;
  reason: string;
  /** True for 410 Gone: the endpoint must be disabled as well. */
  disablesEndpoint: boolean;
}

const verdict = (errorClass: ErrorClass, v: Verdict, reason: string, disablesEndpoint = false): Classification => ({
  errorClass,
  verdict: v,
  reason,
  disablesEndpoint,
});

const NETWORK: Record<NetworkError, Classification> = {
  timeout: verdict("timeout", "retry", "timed out waiting for the receiver"),
  connection_error: verdict("connection_error", "retry", "connection refused or reset"),
  dns_error: verdict("dns_error", "retry", "DNS lookup failed"),
  // Refused by our SSRF guard: retrying cannot change the address it resolves to in time.
  blocked_target: verdict("blocked_target", "dead", "target address is not allowed (private, loopback or link-local)"),
};

const classifyStatus = (code: number): Classification => {
  const http = `HTTP ${code} from receiver`;
  if (code >= 200 && code < 300) return verdict("none", "success", http);
  if (code === 408) return verdict("request_timeout", "retry", `${http} (request timeout)`);
  if (code === 429) return verdict("rate_limited", "retry", `${http} (rate limited)`);
  if (code === 503) return verdict("unavailable", "retry", `${http} (unavailable)`);
  if (code === 501) return verdict("not_implemented", "dead", `${http} (not implemented)`);
  if (code === 410) return verdict("gone", "dead", `${http} (gone): endpoint disabled`, true);
  if (code >= 500 && code < 600) return verdict("server_error", "retry", http);
  if (code >= 300 && code < 400) return verdict("redirect", "dead", `${http} (redirects are not followed)`);
  if (code >= 400 && code < 500) return verdict("client_error", "dead", http);
  // 1xx as a final answer, or outside HTTP's range: a broken receiver, worth another try.
  return verdict("server_error", "retry", `unexpected ${http}`);
};

/**
 * Classifies an attempt per API.md's table. A network error wins over a status; neither at all
 * means the connection gave no answer, retried like a reset.
 */
export const classifyAttempt = (result: AttemptResult): Classification => {
  if (result.networkError !== undefined) return NETWORK[result.networkError];
  if (result.statusCode === undefined) return { ...NETWORK.connection_error, reason: "no response from receiver" };
  return classifyStatus(result.statusCode);
};

const NETWORK_CLASSES = new Set<ErrorClass>(["timeout", "connection_error", "dns_error", "blocked_target"]);

/** The network error behind a recorded error class, if it was one: lets a recorded attempt be reclassified. */
export const networkErrorOf = (errorClass: ErrorClass): NetworkError | undefined => (NETWORK_CLASSES.has(errorClass) ? (errorClass as NetworkError) : undefined);
