import {
  createRemoteJWKSet,
  errors as joseErrors,
  importJWK,
  importSPKI,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type ProtectedHeaderParameters,
} from "jose";
import { Scope } from "../../contracts/common.js";
import type { JwtConfig } from "../shared/config.js";
import { redactActorId } from "../../domain/redaction/redact.js";
import * as E from "./errors.js";

/** An operator identified by a JWT: who (issuer and subject) and which of API.md's scopes it holds. */
export interface JwtOperator {
  id: string;
  scopes: Scope[];
}

/** Verifies a bearer JWT; null when it is not valid (bad signature, expired, wrong issuer or audience). */
export type JwtVerifier = (token: string) => Promise<JwtOperator | null>;

/** Asymmetric algorithms only: a public key must never be usable as an HMAC secret. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
const CLOCK_TOLERANCE_S = 30;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether a bearer token looks like a compact JWS (API keys and the admin token never have dots). */
export const looksLikeJwt = (token: string): boolean => JWT_SHAPE.test(token);

/**
 * The verifier for `config`: keys from a static public key (PEM SPKI or a JWK), or the issuer's
 * JWKS (`jwksUrl`, or the `jwks_uri` of its OIDC discovery document, fetched on first use).
 */
export function createJwtVerifier(config: JwtConfig, fetchImpl: typeof fetch = fetch): JwtVerifier {
  const keys = config.publicKey ? staticKey(config.publicKey) : remoteKeys(config, fetchImpl);
  const options: JWTVerifyOptions = { algorithms: ALGORITHMS, clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ["exp"] };
  if (config.issuer) options.issuer = config.issuer;
  if (config.audience) options.audience = config.audience;
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, options));
    } catch (error) {
      // The issuer cannot be reached: not the caller's fault, and not a verdict on the token.
      if (error instanceof joseErrors.JWKSTimeout || error instanceof TypeError) throw E.dependencyUnavailable("the OIDC issuer");
      if (error instanceof E.ApiError) throw error;
      return null;
    }
    // An email subject is pseudonymised before it reaches any event: the log is immutable.
    return { id: redactActorId(`jwt:${payload.iss ?? "static"}:${payload.sub ?? "unknown"}`), scopes: scopesOf(payload) };
  };
}

/** The `scope` claim (space-separated string or array; `scp` as some issuers name it), known scopes only. */
export function scopesOf(payload: JWTPayload): Scope[] {
  const raw = payload.scope ?? payload.scp;
  const words = typeof raw === "string" ? raw.split(/\s+/) : Array.isArray(raw) ? raw.filter((s): s is string => typeof s === "string") : [];
  return [...new Set(words.filter((w): w is Scope => Scope.safeParse(w).success))];
}

/** A static key; its algorithm is the token's (within {@link ALGORITHMS}), each import cached. */
function staticKey(text: string): JWTVerifyGetKey {
  const imported = new Map<string, ReturnType<typeof importSPKI>>();
  const jwk = text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : null;
  return (header: ProtectedHeaderParameters) => {
    const alg = header.alg ?? "";
    if (!ALGORITHMS.includes(alg)) throw new joseErrors.JOSEAlgNotAllowed("algorithm not allowed");
    let key = imported.get(alg);
    if (!key) {
      key = (jwk ? importJWK({ ...jwk, alg }, alg) : importSPKI(text, alg)) as ReturnType<typeof importSPKI>;
      imported.set(alg, key);
    }
    return key;
  };
}

/** The issuer's JWKS, its URL from the configuration or from discovery (retried after a failure). */
function remoteKeys(config: JwtConfig, fetchImpl: typeof fetch): JWTVerifyGetKey {
  let jwks: Promise<JWTVerifyGetKey> | undefined;
  const open = async (): Promise<JWTVerifyGetKey> => {
    const url = config.jwksUrl ?? (await discoverJwksUri(config.issuer!, fetchImpl));
    return createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  };
  return async (header, token) => {
    jwks ??= open().catch((error) => {
      jwks = undefined;
      throw error;
    });
    return (await jwks)(header, token);
  };
}

async function discoverJwksUri(issuer: string, fetchImpl: typeof fetch): Promise<string> {
  const response = await fetchImpl(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new TypeError(`OIDC discovery answered ${response.status}`);
  const { jwks_uri: uri } = (await response.json()) as { jwks_uri?: unknown };
  if (typeof uri !== "string") throw new TypeError("OIDC discovery names no jwks_uri");
  return uri;
}
