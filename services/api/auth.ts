import { timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { prefixedId, type Actor, type Scope } from "../../contracts/common.js";
import { HEADERS } from "../../contracts/http/common.js";
import { tenantDecider } from "../../domain/tenant/tenant.js";
import type { ApiDeps } from "./deps.js";
import * as E from "./errors.js";
import { createJwtVerifier, looksLikeJwt, type JwtVerifier } from "./jwt.js";
import type { KeyUsage } from "./key-usage.js";
import { createKeyLookup, type KeyLookupOptions } from "./key-lookup.js";
import { sha256Digest } from "./keys.js";

/**
 * Who is calling: the platform operator (any tenant; the admin token holds every scope, an operator
 * JWT those of its `scope` claim, `admin` meaning all) or one tenant's API key.
 */
export type Principal =
  | { kind: "operator"; id: string; scopes: readonly Scope[] | "all" }
  | { kind: "apikey"; keyId: string; tenantId: string; scopes: readonly Scope[] };

export interface AuthContext {
  principal: Principal;
  /** Recorded on every event the request causes. */
  actor: Actor;
  /** The tenant the request acts on (X-Tenant-Id), on tenant routes. */
  tenantId: string | null;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The scope the route needs; null: no credential at all (health, docs). */
    scope?: Scope | null;
    /** The route acts on the tenant named in X-Tenant-Id. */
    tenantScoped?: boolean;
  }
  interface FastifyRequest {
    auth: AuthContext | null;
  }
}

type AuthDeps = Pick<ApiDeps, "config" | "store" | "view"> & {
  /** Operator JWTs; defaults to one made from `config.jwt`, none when that is unset. */
  jwt?: JwtVerifier;
  /** Bounds of the store look-up of keys the view has not seen (tests make them small). */
  keyLookup?: KeyLookupOptions;
  /** Where key uses are recorded (`lastUsedAt`); none when absent. */
  keyUsage?: KeyUsage;
  now?: () => Date;
};
const TenantId = prefixedId("tenant");

const bearer = (request: FastifyRequest): string | null => {
  const match = /^Bearer +([^\s]+) *$/i.exec(request.headers.authorization ?? "");
  return match?.[1] ?? null;
};

const headerValue = (request: FastifyRequest, name: string): string | null => {
  const value = request.headers[name];
  return typeof value === "string" && value.length > 0 ? value : null;
};

/** Whether a tenant exists: the view knows it, or (created a moment ago elsewhere) the store does. */
export async function tenantExists({ store, view }: Pick<AuthDeps, "store" | "view">, tenantId: string): Promise<boolean> {
  if (!TenantId.safeParse(tenantId).success) return false;
  if (view.tenant(tenantId)?.status === "active") return true;
  const ref = { tenantId, aggregateType: "tenant" as const, aggregateId: tenantId };
  return (await store.load(ref, tenantDecider, { fresh: true })).state.status === "active";
}

/** Resolves a bearer token to a principal, or throws 401. */
export function createAuthenticator({ config, store, view, jwt, keyLookup }: AuthDeps) {
  const findKey = createKeyLookup({ store, view }, keyLookup);
  const adminDigest = config.adminToken === undefined ? undefined : sha256Digest(config.adminToken);

  /** Needs nothing of the request but the token: the credential is checked before anything else. */
  async function principalOf(token: string): Promise<Principal> {
    // One digest of the token serves both checks: constant-time against the admin token's, and as the key's hash.
    const digest = sha256Digest(token);
    if (adminDigest !== undefined && timingSafeEqual(digest, adminDigest)) return { kind: "operator", id: "admin", scopes: "all" };
    if (looksLikeJwt(token)) {
      const operator = jwt ? await jwt(token) : null;
      if (!operator) throw E.unauthorized();
      return { kind: "operator", id: operator.id, scopes: operator.scopes.includes("admin") ? "all" : operator.scopes };
    }
    const key = await findKey(token, digest.toString("hex"));
    if (!key) throw E.unauthorized();
    if (key.state.status !== "active") throw E.unauthorized("this API key has been revoked");
    return { kind: "apikey", keyId: key.keyId, tenantId: key.tenantId, scopes: key.state.scopes };
  }

  return { principalOf };
}

/** Checks the credential, the tenant and the scope every route declares, before its body is read. */
export const authPlugin = fp<AuthDeps>(
  async (app: FastifyInstance, deps) => {
    const jwt = deps.jwt ?? (deps.config.jwt ? createJwtVerifier(deps.config.jwt) : undefined);
    const auth = createAuthenticator({ ...deps, jwt });
    const now = deps.now ?? (() => new Date());
    app.decorateRequest("auth", null);
    // Default deny: a route that forgot to declare its scope fails at startup, never serves openly.
    app.addHook("onRoute", (route) => {
      if (route.config?.scope === undefined) throw new Error(`route ${route.method} ${route.url} declares no scope`);
    });
    app.addHook("onRequest", async (request) => {
      const { scope, tenantScoped = false } = request.routeOptions.config ?? {};
      if (!scope) return;
      // The credential first (401), then the tenant header (400), then the tenant and scope (403).
      const token = bearer(request);
      if (!token) throw E.unauthorized();
      const principal = await auth.principalOf(token);
      const tenantHeader = headerValue(request, HEADERS.tenantId);
      if (tenantScoped && !tenantHeader) throw E.tenantHeaderRequired();
      const tenantId = tenantScoped ? tenantHeader : null;
      if (principal.kind === "operator") {
        if (principal.scopes !== "all" && (scope === "admin" || !principal.scopes.includes(scope))) {
          throw E.forbidden(`this token lacks the ${scope} scope`);
        }
        if (tenantId !== null && !(await tenantExists(deps, tenantId))) throw E.notFound(`tenant ${tenantId} not found`);
        request.auth = { principal, actor: { kind: "operator", id: principal.id }, tenantId };
        return;
      }
      if (scope === "admin" || !tenantScoped) throw E.forbidden("this route is for the platform operator");
      if (tenantId !== principal.tenantId) throw E.forbidden("this key belongs to another tenant");
      if (!principal.scopes.includes(scope)) throw E.forbidden(`this key lacks the ${scope} scope`);
      request.auth = { principal, actor: { kind: "apikey", id: principal.keyId }, tenantId };
      deps.keyUsage?.touch(principal.tenantId, principal.keyId, now());
    });
  },
  { name: "zen-auth" },
);

/** The authenticated caller; routes only run after {@link authPlugin} set it. */
export function authOf(request: FastifyRequest): AuthContext {
  if (!request.auth) throw E.unauthorized();
  return request.auth;
}

/** The tenant a tenant-scoped route acts on. */
export function tenantOf(request: FastifyRequest): string {
  const tenantId = authOf(request).tenantId;
  if (!tenantId) throw E.tenantHeaderRequired();
  return tenantId;
}
