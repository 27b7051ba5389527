import { createHash, type Hash } from "node:crypto";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { HEADERS } from "../../contracts/http/common.js";
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER } from "../../contracts/http/replay.js";
import { authOf } from "./auth.js";
import * as E from "./errors.js";
import { sha256Hex } from "./keys.js";
import type { IdempotencyStore, StoredResponse } from "./idempotency-store.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * Idempotency-Key on this route (API.md "Conventions"): honoured when sent on every POST, PUT,
     * PATCH and DELETE by default; `"required"` answers 400 `idempotency_key_required` without one;
     * `"off"` ignores it.
     */
    idempotency?: "required" | "honoured" | "off";
    /**
     * The route's answer shows a secret (a created endpoint's or source's, a rotated one): its
     * replay goes only to the credential that made it, not to every key of the tenant.
     */
    answersSecret?: boolean;
  }
}

/** The methods that mutate, on which a key is honoured: PUT too (API.md names POST/PATCH/DELETE, and PUT is as much a mutation). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const MAX_KEY_LENGTH = 255;
/** Headers that describe a kept response; the request id and the like belong to each request. */
const KEPT_HEADERS = ["content-type", HEADERS.seq, "location"];

/** One request's key: the hash of its body bytes as they stream in, then the claim. */
interface Pending {
  key: string;
  body: Hash;
  bodyDigest: string | null;
  storeKey?: string;
  fingerprint?: string;
  /** Who asked: `apikey:<id>` or `operator:<id>`. */
  credential?: string;
  revision?: number;
  /** Refreshes the claim while the request runs; `stop()` answers the claim's latest revision. */
  claim?: ClaimKeeper;
  replayed?: boolean;
}

interface ClaimKeeper {
  stop(): Promise<number>;
}

/** How often complete() is tried before the kept response is given up (the claim then goes stale). */
const COMPLETE_ATTEMPTS = 3;
const COMPLETE_RETRY_MS = 100;

/**
 * Keeps a running request's claim fresh (every quarter of the store's stale bound), so a request
 * slower than that bound is not taken over by a retry: only a claim whose process died goes stale.
 */
function keepClaim(store: IdempotencyStore, key: string, fp: string, revision: number, now: () => number, log: FastifyRequest["log"]): ClaimKeeper {
  let current = revision;
  let stopped = false;
  let beat: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        beat = store
          .refresh(key, current, fp, now())
          .then((next) => {
            if (next === null)
              stopped = true; // taken over: it is not ours to refresh any more
            else current = next;
          })
          .catch((error: unknown) => log.warn({ err: error }, "could not refresh an idempotency claim"))
          .finally(schedule);
      },
      Math.max(1, Math.floor(store.staleAfterMs / 4)),
    );
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await beat;
      return current;
    },
  };
}

/** A 409 `conflict` (the aggregate changed concurrently: "retry") would be wrong to replay for 24 h; it is released like a 5xx. */
function isConcurrentChange(status: number, payload: unknown): boolean {
  if (status !== 409 || (typeof payload !== "string" && !Buffer.isBuffer(payload))) return false;
  try {
    return (JSON.parse(payload.toString()) as { error?: { code?: string } }).error?.code === "conflict";
  } catch {
    return false;
  }
}

/** complete() a bounded number of times: a response kept late beats a claim left to go stale and run twice. */
async function completeWithRetries(store: IdempotencyStore, args: Parameters<IdempotencyStore["complete"]>, log: FastifyRequest["log"]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.complete(...args);
    } catch (error) {
      if (attempt >= COMPLETE_ATTEMPTS) return log.error({ err: error, attempts: attempt }, "could not keep an idempotent response");
      log.warn({ err: error, attempt }, "could not keep an idempotent response, retrying");
      await sleep(COMPLETE_RETRY_MS * attempt);
    }
  }
}

/** The key a request names on a route that honours keys, or null; 400 when required and missing. */
function requestedKey(request: FastifyRequest): string | null {
  const config = request.routeOptions.config ?? {};
  if (!IDEMPOTENT_METHODS.has(request.method) || !config.scope || config.idempotency === "off") return null;
  const value = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (value === undefined || value === "") {
    if (config.idempotency === "required") throw E.idempotencyKeyRequired();
    return null;
  }
  if (typeof value !== "string" || value.length > MAX_KEY_LENGTH) {
    throw E.invalidRequest("the Idempotency-Key is invalid", [{ path: "headers.idempotency-key", message: "1–255 characters, sent once" }]);
  }
  return value;
}

/**
 * Idempotency-Key for every route at once: the key is scoped to the caller (the tenant, or the
 * operator and the tenant it names) and the route; the request is fingerprinted by method, path and
 * body bytes. `preParsing` hashes the body as it streams in, `preHandler` claims the key or replays
 * the kept response, `onSend` keeps a response below 500 or releases the key after a 5xx.
 */
export const idempotencyPlugin = fp<{ store: IdempotencyStore; now?: () => number }>(
  async (app: FastifyInstance, { store, now = Date.now }) => {
    const pending = new WeakMap<FastifyRequest, Pending>();

    app.addHook("preParsing", async (request, _reply, payload) => {
      const key = requestedKey(request);
      if (key === null) return payload;
      const state: Pending = { key, body: createHash("sha256"), bodyDigest: null };
      pending.set(request, state);
      const tee = new PassThrough();
      tee.on("data", (chunk: Buffer) => state.body.update(chunk));
      tee.on("end", () => (state.bodyDigest = state.body.digest("hex")));
      payload.on("error", (error) => tee.destroy(error));
      return payload.pipe(tee);
    });

    app.addHook("preHandler", async (request, reply) => {
      const state = pending.get(request);
      if (!state) return;
      const auth = authOf(request);
      state.credential = auth.principal.kind === "operator" ? `operator:${auth.principal.id}` : `apikey:${auth.principal.keyId}`;
      // Keys are the tenant's (any of its API keys), or one operator's.
      const who = auth.principal.kind === "operator" ? state.credential : "tenant";
      state.storeKey = sha256Hex([who, auth.tenantId ?? "-", request.method, request.routeOptions.url, state.key].join("\n"));
      // A request without a body never streamed one: its bytes are the empty string.
      const bodyDigest = state.bodyDigest ?? sha256Hex("");
      state.fingerprint = sha256Hex([request.method, request.url, bodyDigest].join("\n"));
      const claim = await store.claim(state.storeKey, state.fingerprint, now());
      switch (claim.kind) {
        case "claimed":
          state.revision = claim.revision;
          state.claim = keepClaim(store, state.storeKey, state.fingerprint, claim.revision, now, request.log);
          return;
        case "replay":
          // Another key of the tenant may not read a secret this key was shown.
          if (request.routeOptions.config?.answersSecret && claim.response.madeBy !== state.credential) throw E.idempotencyKeyOfAnother();
          state.replayed = true;
          return replay(reply, claim.response);
        case "conflict":
          throw E.idempotencyConflict();
        case "in_use":
          throw E.idempotencyKeyInUse();
      }
    });

    app.addHook("onSend", async (request, reply, payload) => {
      const state = pending.get(request);
      if (!state || state.revision === undefined || state.replayed) return payload;
      const { storeKey, fingerprint, claim } = state as Required<Pending>;
      state.revision = undefined;
      const revision = await claim.stop();
      if (
        reply.statusCode >= 500 ||
        isConcurrentChange(reply.statusCode, payload) ||
        !(payload === null || payload === undefined || typeof payload === "string" || Buffer.isBuffer(payload))
      ) {
        await store.release(storeKey, revision).catch((error: unknown) => request.log.warn({ err: error }, "could not release an idempotency key"));
        return payload;
      }
      const headers: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const value = reply.getHeader(name);
        if (value !== undefined) headers[name] = String(value);
      }
      const body = payload === null || payload === undefined ? null : payload.toString();
      // Kept before the response leaves, so a retry that follows it at once is replayed, not refused.
      await completeWithRetries(store, [storeKey, revision, fingerprint, { status: reply.statusCode, headers, body, madeBy: state.credential }], request.log);
      return payload;
    });

    // Whatever ended the request without onSend (an aborted reply), the claim stops being refreshed.
    app.addHook("onResponse", async (request) => {
      await pending.get(request)?.claim?.stop();
    });
  },
  { name: "zen-idempotency", dependencies: ["zen-auth"] },
);

function replay(reply: FastifyReply, response: StoredResponse): FastifyReply {
  reply.code(response.status).headers(response.headers).header(IDEMPOTENT_REPLAYED_HEADER, "true");
  return reply.send(response.body ?? undefined);
}
