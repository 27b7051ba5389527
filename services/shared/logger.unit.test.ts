import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, traceFields } from "./logger.js";

function capture(allow?: string[]) {
  const lines: string[] = [];
  const logger = createLogger("info", new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString("utf8")), done()) }), { allow });
  return { logger, last: () => JSON.parse(lines.at(-1)!) };
}

describe("logger redaction", () => {
  it("blanks authorization and cookie headers in fastify's req and res serializations", () => {
    const { logger, last } = capture();
    logger.info(
      {
        req: { method: "GET", url: "/x", headers: { authorization: "Bearer zk_live_secret", cookie: "s=1", "x-api-key": "k", host: "h" } },
        res: { headers: { "set-cookie": "s=2" } },
      },
      "request",
    );
    const line = last();
    expect(line.req.headers).toEqual({ authorization: "[REDACTED]", cookie: "[REDACTED]", "x-api-key": "[REDACTED]", host: "h" });
    expect(line.res.headers["set-cookie"]).toBe("[REDACTED]");
  });

  it("blanks secret and key fields at the top and nested, and signature headers", () => {
    const { logger, last } = capture();
    logger.info({
      secret: "whsec_a",
      key: "zk_b",
      endpoint: { secret: "whsec_c", url: "https://x" },
      tenant: { apiKey: { key: "zk_d" } },
      err: { headers: { authorization: "Bearer e" } },
      headers: { "webhook-signature": "v1,f" },
      keyId: "key_1",
      keyPrefix: "zk_live_ab",
    });
    const line = JSON.stringify(last());
    for (const secret of ["whsec_a", "zk_b", "whsec_c", "zk_d", "Bearer e", "v1,f"]) expect(line).not.toContain(secret);
    expect(last().keyId).toBe("key_1");
    expect(last().keyPrefix).toBe("zk_live_ab");
    expect(last().endpoint.url).toBe("https://x");
  });
});

describe("logger: the redaction module on every string", () => {
  it("redacts the message, plain fields at any depth, and interpolated values", () => {
    const { logger, last } = capture();
    logger.info(
      { url: "https://u:p@hooks.example.com/x", detail: { note: "from 203.0.113.9 by carol@example.com", list: ["xoxb-123-abc"] } },
      "contact %s about ghp_abcdefghijklmnop",
      "dave@example.com",
    );
    const line = last();
    expect(line.url).toBe("https://[REDACTED:url-credentials]hooks.example.com/x");
    expect(line.detail).toEqual({ note: "from [REDACTED:ip] by [REDACTED:email]", list: ["[REDACTED:slack-token]"] });
    expect(line.msg).toBe("contact [REDACTED:email] about [REDACTED:github-token]");
  });

  it("redacts an error's message and stack, and secret-named fields at any depth", () => {
    const { logger, last } = capture();
    logger.error({ err: new Error("refused by 10.1.2.3 with whsec_abcdefghijklmnopqrstuvwx"), a: { b: { clientSecret: "s3cr3t", accessToken: "t0k3n" } } }, "failed");
    const line = last();
    expect(line.err.type).toBe("Error");
    expect(line.err.message).toBe("refused by [REDACTED:ip] with [REDACTED:webhook-secret]");
    expect(line.err.stack).not.toContain("whsec_");
    expect(line.a.b).toEqual({ clientSecret: "[REDACTED]", accessToken: "[REDACTED]" });
  });

  it("leaves ordinary fields alone and keeps allowlisted strings", () => {
    const { logger, last } = capture(["support@zen.dev"]);
    logger.info({ tenantId: "ten_1", reqId: "3f6c1a2e-0d4b-4c7e-9a51-2b8f0e6d7c11", statusCode: 200, to: "support@zen.dev", cc: "x@example.com" }, "request completed");
    expect(last()).toMatchObject({
      tenantId: "ten_1",
      reqId: "3f6c1a2e-0d4b-4c7e-9a51-2b8f0e6d7c11",
      statusCode: 200,
      to: "support@zen.dev",
      cc: "[REDACTED:email]",
      msg: "request completed",
    });
  });
});

describe("traceFields", () => {
  it("takes the trace id of a W3C traceparent, and nothing without one", () => {
    expect(traceFields({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" })).toEqual({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(traceFields({})).toEqual({});
    expect(traceFields(undefined)).toEqual({});
    expect(traceFields({ traceparent: "garbage" })).toEqual({});
  });
});
