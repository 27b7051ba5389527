import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit, waitForSeq } from "../../projections/index.js";
import { redactActorId } from "../../domain/redaction/redact.js";
import { buildApp } from "./app.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

const AUDIENCE = "zen-webhooks-api";
let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;
let issuer = "";
let idp: Server;
let oidcApp: FastifyInstance;
let staticApp: FastifyInstance;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["ingest"]);
  const pair = await generateKeyPair("ES256");
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  // A loopback OIDC issuer: discovery document and JWKS.
  idp = createServer((req, res) => {
    const body = req.url === "/.well-known/openid-configuration" ? { issuer, jwks_uri: `${issuer}/jwks` } : req.url === "/jwks" ? { keys: [jwk] } : null;
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => idp.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  // The issuer's keys found by discovery (no ZEN_OIDC_JWKS_URL).
  oidcApp = await buildApp({ ...h.deps, config: { ...h.deps.config, jwt: { issuer, audience: AUDIENCE, jwksUrl: undefined, publicKey: undefined } } });
  // A static development key (PEM), no issuer or audience configured.
  const pem = await exportSPKI(pair.publicKey);
  staticApp = await buildApp({ ...h.deps, config: { ...h.deps.config, jwt: { issuer: undefined, audience: undefined, jwksUrl: undefined, publicKey: pem } } });
});

afterAll(async () => {
  await oidcApp?.close();
  await staticApp?.close();
  await new Promise<void>((resolve) => (idp ? idp.close(() => resolve()) : resolve()));
  await h?.stop();
});

interface TokenOptions {
  scope?: string | string[];
  iss?: string;
  aud?: string;
  exp?: number | string;
  key?: CryptoKey;
}

function token({ scope = "webhooks:read", iss = issuer, aud = AUDIENCE, exp = "5m", key = signingKey }: TokenOptions = {}) {
  return new SignJWT({ scope })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(iss)
    .setAudience(aud)
    .setSubject("ops@example.com")
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);
}

const call = (app: FastifyInstance, jwt: string, method: "GET" | "POST", url: string, body?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${jwt}`, "x-tenant-id": t.tenantId, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });

describe("operator JWTs", () => {
  it("act on any tenant within their scopes (string or array claim), audited as the operator", async () => {
    expect((await call(oidcApp, await token(), "GET", "/v1/webhooks/registry")).statusCode).toBe(200);
    const res = await call(oidcApp, await token({ scope: ["ingest", "webhooks:read"] }), "POST", "/v1/webhooks/ingest", { eventType: "a.b", payload: {} });
    expect(res.statusCode).toBe(202);
    const subject = h.streams.topology.aggregateSubject(t.tenantId, "message", res.json().messageId);
    const stored = await h.streams.jsm.streams.getMessage(h.streams.topology.stream, { last_by_subj: subject });
    // Recorded as the operator, the email subject pseudonymised before it reaches the immutable log.
    expect(stored?.json<{ actor: unknown }>().actor).toEqual({ kind: "operator", id: redactActorId(`jwt:${issuer}:ops@example.com`) });
    expect(stored?.string()).not.toContain("ops@example.com");
  });

  it("audits the operator by issuer, with an email subject pseudonymised, still found by the id it acted as", async () => {
    const actorId = `jwt:${issuer}:ops@example.com`;
    const created = await oidcApp.inject({
      method: "POST",
      url: "/v1/webhooks/sources",
      payload: { name: "By JWT", scheme: "github" },
      headers: { authorization: `Bearer ${await token({ scope: "webhooks:write" })}`, "x-tenant-id": t.tenantId, "idempotency-key": randomUUID() },
    });
    expect(created.statusCode).toBe(201);
    expect(await waitForSeq(h.db, Number(created.headers["x-zen-seq"]), 5_000)).toBe(true);
    const rows = (await listAudit(h.db, t.tenantId, { actorId })).data;
    expect(rows.map((row) => [row.action, row.aggregateId])).toEqual([["source.created", created.json().id]]);
    expect(rows[0]!.actor.kind).toBe("operator");
    expect(rows[0]!.actor.id.startsWith(`jwt:${issuer}:`)).toBe(true);
    expect(rows[0]!.actor.id).toMatch(/:\[REDACTED:email:[0-9a-f]{12}\]$/);
    expect(JSON.stringify(await listAudit(h.db, t.tenantId))).not.toContain("ops@example.com");
  });

  it("403 without the route's scope, and on operator routes without admin; admin may do everything", async () => {
    const readOnly = await token({ scope: "webhooks:read deliveries:read" });
    const ingest = await call(oidcApp, readOnly, "POST", "/v1/webhooks/ingest", { eventType: "a.b", payload: {} });
    expect(ingest.statusCode).toBe(403);
    expect(ingest.json().error).toMatchObject({ code: "forbidden", message: expect.stringMatching(/ingest/) });
    expect((await call(oidcApp, readOnly, "POST", "/v1/tenants", { name: "x" })).statusCode).toBe(403);
    expect((await call(oidcApp, await token({ scope: "admin" }), "POST", "/v1/tenants", { name: "Made by JWT" })).statusCode).toBe(201);
    expect((await call(oidcApp, await token({ scope: "admin" }), "GET", "/v1/webhooks/dlq")).statusCode).toBe(200);
  });

  it("401 when expired, from another issuer, for another audience, or badly signed", async () => {
    const bad = [
      await token({ exp: Math.floor(Date.now() / 1000) - 120 }),
      await token({ iss: "https://evil.example.com" }),
      await token({ aud: "another-app" }),
      await token({ key: strangerKey }),
      `${(await token()).slice(0, -4)}AAAA`,
    ];
    for (const jwt of bad) {
      const res = await call(oidcApp, jwt, "GET", "/v1/webhooks/registry");
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe("unauthorized");
    }
  });

  it("verify against a static development key; refused where no JWT is configured", async () => {
    const jwt = await token({ scope: "webhooks:read" });
    expect((await call(staticApp, jwt, "GET", "/v1/webhooks/registry")).statusCode).toBe(200);
    expect((await call(staticApp, await token({ key: strangerKey }), "GET", "/v1/webhooks/registry")).statusCode).toBe(401);
    expect((await call(h.app, jwt, "GET", "/v1/webhooks/registry")).statusCode).toBe(401);
  });

  it("never write the token in a log line", () => {
    expect(h.logLines.join("")).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});
