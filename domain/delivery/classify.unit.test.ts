import { describe, expect, it } from "vitest";
import { classifyAttempt, networkErrorOf, type AttemptResult } from "./classify.js";

type Row = [string, AttemptResult, string, string, boolean];

// One row per line of API.md's "Delivery outcomes and the retry policy" table.
const rows: Row[] = [
  ["200", { statusCode: 200 }, "none", "success", false],
  ["204", { statusCode: 204 }, "none", "success", false],
  ["299", { statusCode: 299 }, "none", "success", false],
  ["connection refused/reset", { networkError: "connection_error" }, "connection_error", "retry", false],
  ["DNS failure", { networkError: "dns_error" }, "dns_error", "retry", false],
  ["timeout", { networkError: "timeout" }, "timeout", "retry", false],
  ["408", { statusCode: 408 }, "request_timeout", "retry", false],
  ["500", { statusCode: 500 }, "server_error", "retry", false],
  ["502", { statusCode: 502 }, "server_error", "retry", false],
  ["504", { statusCode: 504 }, "server_error", "retry", false],
  ["599", { statusCode: 599 }, "server_error", "retry", false],
  ["429", { statusCode: 429, retryAfterMs: 30_000 }, "rate_limited", "retry", false],
  ["503", { statusCode: 503 }, "unavailable", "retry", false],
  ["410", { statusCode: 410 }, "gone", "dead", true],
  ["301", { statusCode: 301 }, "redirect", "dead", false],
  ["302", { statusCode: 302 }, "redirect", "dead", false],
  ["308", { statusCode: 308 }, "redirect", "dead", false],
  ["501", { statusCode: 501 }, "not_implemented", "dead", false],
  ["400", { statusCode: 400 }, "client_error", "dead", false],
  ["401", { statusCode: 401 }, "client_error", "dead", false],
  ["404", { statusCode: 404 }, "client_error", "dead", false],
  ["422", { statusCode: 422 }, "client_error", "dead", false],
  ["blocked target", { networkError: "blocked_target" }, "blocked_target", "dead", false],
];

describe("classifyAttempt", () => {
  it.each(rows)("%s → %s / %s", (_, result, errorClass, verdict, disablesEndpoint) => {
    expect(classifyAttempt(result)).toMatchObject({ errorClass, verdict, disablesEndpoint });
  });

  it("explains itself in words", () => {
    expect(classifyAttempt({ statusCode: 500 }).reason).toBe("HTTP 500 from receiver");
    expect(classifyAttempt({ networkError: "connection_error" }).reason).toBe("connection refused or reset");
    expect(classifyAttempt({ statusCode: 410 }).reason).toContain("gone");
  });

  it("treats no answer at all as a connection error", () => {
    expect(classifyAttempt({})).toMatchObject({ errorClass: "connection_error", verdict: "retry", reason: "no response from receiver" });
  });

  it("retries a status outside the HTTP range", () => {
    expect(classifyAttempt({ statusCode: 100 })).toMatchObject({ errorClass: "server_error", verdict: "retry" });
    expect(classifyAttempt({ statusCode: 600 })).toMatchObject({ errorClass: "server_error", verdict: "retry" });
  });

  it("maps network classes back to their network error", () => {
    expect(networkErrorOf("timeout")).toBe("timeout");
    expect(networkErrorOf("server_error")).toBeUndefined();
  });
});
