import { describe, expect, it } from "vitest";
import { REDACTED, redact, redactActorId, redactObject } from "./redact.js";

const JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

describe("redact", () => {
  it.each([
    ["email", "contact alice.smith+hooks@example.co.uk now", "alice.smith+hooks@example.co.uk"],
    ["email (mailto)", "mailto:bob@example.com", "bob@example.com"],
    ["api key", "key=zk_live_4f9a8b7c6d5e", "zk_live_4f9a8b7c6d5e"],
    ["api key in a sentence", "use zk_AbC123xyz_0 here", "zk_AbC123xyz_0"],
    ["bearer token (lower case)", "authorization: bearer opaque-token_123", "opaque-token_123"],
    ["basic credentials", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="],
    ["url with user and password", "GET https://admin:hunter2@db.example.com:5432/app", "admin:hunter2@"],
    ["url with a user only", "redis://token123@cache.example.com", "token123@"],
    ["webhook secret", "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["slack bot token", "xoxb-1234567890-abcdefghij is the token", "xoxb-1234567890-abcdefghij"],
    ["slack user token", "t=xoxp-123-456-789-abc", "xoxp-123-456-789-abc"],
    ["slack legacy workspace token", "xoxa-2-1234567890-abcdef", "xoxa-2-1234567890-abcdef"],
    ["slack app-level token", "xapp-1-A0123456789-1234567890123-abcdef0123", "xapp-1-A0123456789-1234567890123-abcdef0123"],
    ["github token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a leaked", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"],
    ["github oauth token", "token=gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"],
    ["github user-to-server token", "ghu_abcdefghijklmnop0123", "ghu_abcdefghijklmnop0123"],
    ["github server token", "ghs_abcdefghijklmnop", "ghs_abcdefghijklmnop"],
    ["github pat", "github_pat_11ABCDEFG0123456789_abcdefXYZ", "github_pat_11ABCDEFG0123456789_abcdefXYZ"],
    ["stripe live key", "sk_live_51H8abcDEF123", "sk_live_51H8abcDEF123"],
    ["stripe test key", "(sk_test_4eC39HqLyjWDarjtT1zdp7dc)", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"],
    ["stripe restricted key", "rk_live_51H8abcDEF123", "rk_live_51H8abcDEF123"],
    ["jwt", `token: ${JWT}.`, JWT],
    ["ipv4", "from 203.0.113.42:8080", "203.0.113.42"],
    ["ipv6", "peer 2001:db8:85a3::8a2e:370:7334 closed", "2001:db8:85a3::8a2e:370:7334"],
    ["ipv6 full", "fe80:0000:0000:0000:0204:61ff:fe9d:f156", "fe80:0000:0000:0000:0204:61ff:fe9d:f156"],
    ["ipv6 loopback", "connect ECONNREFUSED ::1:443", "::1"],
    ["ipv4-mapped ipv6", "from ::ffff:192.0.2.128 x", "::ffff:192.0.2.128"],
  ])("redacts %s", (_rule, text, secret) => {
    const out = redact(text);
    expect(out).not.toContain(secret);
    expect(out).toContain("[REDACTED:");
  });

  it("keeps the scheme of Bearer and Basic credentials", () => {
    expect(redact("Authorization: Bearer abc.DEF-123_x")).toBe("Authorization: Bearer [REDACTED:credentials]");
    expect(redact("Authorization: Basic dXNlcjpwYXNz==")).toBe("Authorization: Basic [REDACTED:credentials]");
    expect(redact("authorization: bearer zk_abcdef123456")).not.toContain("zk_abcdef123456");
  });

  it("redacts URL userinfo but keeps scheme, host and path", () => {
    expect(redact("POST https://user:p%40ss@hooks.example.com/in?x=1")).toBe("POST https://[REDACTED:url-credentials]hooks.example.com/in?x=1");
    expect(redact("amqp://guest@mq.example.com:5672")).toBe("amqp://[REDACTED:url-credentials]mq.example.com:5672");
  });

  it("redacts an email inside a query string", () => {
    expect(redact("https://example.com/?email=bob@example.com")).toBe("https://example.com/?email=[REDACTED:email]");
  });

  it("leaves an API key's 12-character display prefix alone (it is shown in lists by design)", () => {
    expect(redact("keyPrefix zk_01HZX4K7Q")).toBe("keyPrefix zk_01HZX4K7Q");
    expect(redact("zk_01HZX4K7Q9")).toBe("[REDACTED:api-key]");
  });

  it("leaves ordinary text, clock times, versions and ids alone", () => {
    const text = "Delivered at 12:34:56 GMT by node v20.19.0 for msg_2abc, std::vector, status 200 OK";
    expect(redact(text)).toBe(text);
    expect(redact("")).toBe("");
  });

  it("merges overlapping matches so no part of a secret leaks", () => {
    const out = redact(`Bearer ${JWT}`);
    expect(out).toBe("Bearer [REDACTED:credentials]");
  });

  it("keeps allowlisted substrings intact and still redacts the rest", () => {
    const text = "write to support@zen.dev, not alice@example.com; from 127.0.0.1 and 10.0.0.7";
    expect(redact(text, { allow: ["support@zen.dev", "127.0.0.1"] })).toBe("write to support@zen.dev, not [REDACTED:email]; from 127.0.0.1 and [REDACTED:ip]");
  });

  it("an allowlist entry does not shield a secret it only partly covers", () => {
    expect(redact("zk_abcdef123456", { allow: ["abc"] })).toBe("[REDACTED:api-key]");
    expect(redact("x", { allow: [""] })).toBe("x");
  });

  it("stays fast on adversarial input", () => {
    const inputs = [`a@${"b.".repeat(10_000)}`, "a:".repeat(10_000), "1.".repeat(10_000), "f:".repeat(10_000)];
    const started = performance.now();
    for (const input of inputs) redact(input);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("redact: secrets a receiver echoes in its response body", () => {
  const AWS_KEY = "AKIAIOSFODNN7EXAMPLE";
  const SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

  it.each([
    ["a JSON access_token", '{"access_token":"ya29.a0AfH6SMBx3","expires_in":3599}', '{"access_token":"[REDACTED:secret-field]","expires_in":3599}'],
    ["a JSON client_secret with spaces", '{ "client_secret" : "cs-9f8e7d6c5b" }', '{ "client_secret" : "[REDACTED:secret-field]" }'],
    ["a JSON password with an escaped quote", '{"password":"hun\\"ter2","user":"bob"}', '{"password":"[REDACTED:secret-field]","user":"bob"}'],
    ["a JSON value cut off by truncation", '{"refresh_token":"1//0gLq', '{"refresh_token":"[REDACTED:secret-field]'],
    ["a form password", "user=bob&password=hunter2&remember=1", "user=bob&password=[REDACTED:secret-field]&remember=1"],
    ["a form token", "token=abc123XYZ", "token=[REDACTED:secret-field]"],
    [
      "a query access_token",
      "GET https://api.example.com/v1/me?access_token=EAAB1234xyz&fields=id",
      "GET https://api.example.com/v1/me?access_token=[REDACTED:secret-field]&fields=id",
    ],
    [
      "signed-URL and OAuth query parameters",
      "GET /v1/inbound/x?sig=abc123&code=4/0AfJohX&X-Amz-Signature=9f8e7d&signature=s1&page=2&error_code=E1",
      "GET /v1/inbound/x?sig=[REDACTED:secret-field]&code=[REDACTED:secret-field]&X-Amz-Signature=[REDACTED:secret-field]&signature=[REDACTED:secret-field]&page=2&error_code=E1",
    ],
    ["an X-Api-Key header line", "HTTP/1.1 401\nX-Api-Key: 4f7c2a9e-live\nServer: x", "HTTP/1.1 401\nX-Api-Key: [REDACTED:secret-field]\nServer: x"],
    ["an AWS access key id", `creds ${AWS_KEY} leaked`, "creds [REDACTED:aws-access-key] leaked"],
    ["a Slack incoming-webhook URL", `post to ${SLACK_HOOK} now`, "post to https://hooks.slack.com/services/[REDACTED:slack-webhook] now"],
  ])("redacts %s, keeping the key name", (_kind, text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it("redacts a whole JSON error body a receiver echoes", () => {
    const body = JSON.stringify({ error: "invalid_grant", access_token: "tok-123456", password: "p@ssw0rd!", api_key: "k-987" });
    const out = redact(body);
    for (const secret of ["tok-123456", "p@ssw0rd!", "k-987"]) expect(out).not.toContain(secret);
    expect(JSON.parse(out)).toEqual({
      error: "invalid_grant",
      access_token: "[REDACTED:secret-field]",
      password: "[REDACTED:secret-field]",
      api_key: "[REDACTED:secret-field]",
    });
  });

  it("leaves prose about tokens and passwords alone", () => {
    const prose = [
      "The token bucket refills at 10 per second; see the password reset page.",
      "Your password must be 12 characters. Tokens expire after an hour.",
      '{"message":"password reset sent","tokens_left":3,"kind":"api key rotation"}',
      "Asia/Tokyo is the zone; AKIA alone is not a key; hooks.slack.com is Slack's host.",
      "status=ok&count=2",
    ];
    for (const text of prose) expect(redact(text)).toBe(text);
  });

  it("keeps the Bearer scheme on an Authorization header line", () => {
    expect(redact("Authorization: Bearer abc.DEF-123_x")).toBe("Authorization: Bearer [REDACTED:credentials]");
  });

  it("stays fast on adversarial key-value input", () => {
    const inputs = ['"token'.repeat(5_000), "token=".repeat(5_000), '"password":"'.repeat(3_000), "x-api-key:".repeat(5_000), `${"a".repeat(50_000)}token`];
    const started = performance.now();
    for (const input of inputs) redact(input);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("redactActorId", () => {
  it("keeps the issuer and pseudonymises an email-shaped subject, the same one each time", () => {
    const id = redactActorId("jwt:https://idp.example.com:ops@example.com");
    expect(id).toMatch(/^jwt:https:\/\/idp\.example\.com:\[REDACTED:email:[0-9a-f]{12}\]$/);
    expect(redactActorId("jwt:https://idp.example.com:OPS@example.com")).toBe(id);
    expect(redactActorId("jwt:https://idp.example.com:dev@example.com")).not.toBe(id);
  });

  it("leaves other actors alone: API keys, the admin token, opaque subjects", () => {
    for (const actor of ["key_01HZX4K7Q9", "admin", "jwt:static:unknown", "jwt:https://idp.example.com:auth0|5f7c8ec7c33c6c004bbafe82"]) {
      expect(redactActorId(actor)).toBe(actor);
    }
  });
});

describe("redact: the allowlist", () => {
  it.each([
    ["an email", "mail ops@zen.dev or eve@evil.com", ["ops@zen.dev"], "mail ops@zen.dev or [REDACTED:email]"],
    ["an IPv4 address", "from 192.0.2.1 and 192.0.2.2", ["192.0.2.1"], "from 192.0.2.1 and [REDACTED:ip]"],
    ["an IPv6 address", "at 2001:db8::1 and 2001:db8::2", ["2001:db8::1"], "at 2001:db8::1 and [REDACTED:ip]"],
    ["a whole URL with credentials", "see https://demo:demo@example.com/x", ["https://demo:demo@example.com/x"], "see https://demo:demo@example.com/x"],
  ])("keeps an allowed %s and redacts the others", (_kind, text, allow, expected) => {
    expect(redact(text, { allow })).toBe(expected);
  });
});

describe("redactObject", () => {
  it("redacts strings at any depth and secret-looking keys entirely", () => {
    const input = {
      event: "user.created",
      data: { email: "alice@example.com", tags: ["ok", "ip 198.51.100.1"], count: 3, active: true, none: null },
      client_secret: "s3cr3t",
      accessToken: { nested: "value" },
      password: 1234,
      Authorization: "Bearer xyz",
      "api-key": "k",
      apiKey: "k",
      API_KEY: "k",
    };
    expect(redactObject(input)).toEqual({
      event: "user.created",
      data: { email: "[REDACTED:email]", tags: ["ok", "ip [REDACTED:ip]"], count: 3, active: true, none: null },
      client_secret: REDACTED,
      accessToken: REDACTED,
      password: REDACTED,
      Authorization: REDACTED,
      "api-key": REDACTED,
      apiKey: REDACTED,
      API_KEY: REDACTED,
    });
    expect(input.data.email).toBe("alice@example.com"); // input untouched
  });

  it("plainOnly walks plain objects and arrays only, handing other objects back untouched", () => {
    const error = new Error("connect to 10.0.0.1 failed");
    const at = new Date("2025-01-01T00:00:00Z");
    const out = redactObject({ err: error, at, list: ["bob@example.com"], token: "t" }, { plainOnly: true });
    expect(out.err).toBe(error);
    expect(out.at).toBe(at);
    expect(out).toMatchObject({ list: ["[REDACTED:email]"], token: REDACTED });
  });

  it("handles primitives, arrays, shared references, cycles and the allowlist", () => {
    expect(redactObject("bob@example.com")).toBe("[REDACTED:email]");
    expect(redactObject(42)).toBe(42);
    expect(redactObject(null)).toBeNull();
    const shared = { note: "hi" };
    expect(redactObject([shared, shared])).toEqual([{ note: "hi" }, { note: "hi" }]);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(redactObject(cyclic)).toEqual({ a: 1, self: REDACTED });
    expect(redactObject({ to: "support@zen.dev" }, { allow: ["support@zen.dev"] })).toEqual({ to: "support@zen.dev" });
  });
});
