import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Topology } from "../../streams/topology.js";
import type { EncryptedSecret } from "../../contracts/common.js";
import type { SecretBox } from "../shared/secret-box.js";
import { isWrongLastSequence } from "../../streams/jetstream-errors.js";

/** How long a key and its response are kept (API.md "Conventions"). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/**
 * A claim not refreshed for this long may be taken over: its process died mid-request. A running
 * request refreshes its claim every quarter of this ({@link IdempotencyStore.refresh}), so a slow
 * request is never taken for a dead one.
 */
export const STALE_CLAIM_MS = 60_000;

/** The response kept for a key: replayed byte for byte, with the headers that describe it. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string | null;
  /** The credential that made it (`apikey:<id>`, `operator:<id>`): a response carrying a secret is replayed to it alone. */
  madeBy?: string;
}

/** What a claim found: it is ours now, or a finished response, or a conflict, or a request still running. */
export type ClaimResult = { kind: "claimed"; revision: number } | { kind: "replay"; response: StoredResponse } | { kind: "conflict" } | { kind: "in_use" };

/**
 * The store behind Idempotency-Key: `claim` is atomic across api processes, `refresh` keeps a
 * running claim fresh, `complete` keeps the response, `release` forgets the claim (a 5xx, so the
 * client may retry).
 */
export interface IdempotencyStore {
  /** How long an unrefreshed claim lasts before another request may take it over. */
  readonly staleAfterMs: number;
  claim(key: string, fingerprint: string, nowMs: number): Promise<ClaimResult>;
  /** Marks a running claim alive at `nowMs`: its new revision, or null when it is no longer ours. */
  refresh(key: string, revision: number, fingerprint: string, nowMs: number): Promise<number | null>;
  complete(key: string, revision: number, fingerprint: string, response: StoredResponse): Promise<void>;
  release(key: string, revision: number): Promise<void>;
}

/**
 * A kept body is sealed with the SecretBox (`sealed: true`): a create or rotate answer carries a
 * secret or an API key in plain text, and none may rest in NATS so. Records kept before sealing
 * (no `sealed`) are read as they are until they expire.
 */
type KeyRecord = { state: "running"; fp: string; at: number } | ({ state: "done"; fp: string; at: number; sealed?: boolean } & StoredResponse);

/**
 * A JetStream KV bucket `<PREFIX>_IDEMPOTENCY` (max age 24 h): `create()` claims a key with an
 * in-progress record holding the request's fingerprint; `update()` on the claim's revision stores the
 * response, its body sealed by `box`; a claim older than `staleAfterMs` is taken over by `update()` on
 * the revision read, so exactly one of several contenders wins it. Independent of the read models,
 * shared by every api.
 */
export async function createIdempotencyStore(
  nc: NatsConnection,
  topology: Topology,
  { box, staleAfterMs = STALE_CLAIM_MS }: { box: SecretBox; staleAfterMs?: number },
): Promise<IdempotencyStore> {
  const kv = await new Kvm(nc).create(topology.bucketName("idempotency"), { ttl: IDEMPOTENCY_TTL_MS, replicas: topology.replicas });
  const encode = (record: KeyRecord) => JSON.stringify(record);

  async function claim(key: string, fp: string, nowMs: number, retries = 2): Promise<ClaimResult> {
    try {
      return { kind: "claimed", revision: await kv.create(key, encode({ state: "running", fp, at: nowMs })) };
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
    }
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") {
      // Released or expired between our create and get: claim again.
      if (retries > 0) return claim(key, fp, nowMs, retries - 1);
      return { kind: "in_use" };
    }
    const record = entry.json<KeyRecord>();
    if (record.fp !== fp) return { kind: "conflict" };
    if (record.state === "done") {
      const body = record.sealed && record.body !== null ? box.decrypt(record.body as EncryptedSecret) : record.body;
      return { kind: "replay", response: { status: record.status, headers: record.headers, body, madeBy: record.madeBy } };
    }
    if (nowMs - record.at < staleAfterMs) return { kind: "in_use" };
    return takeOver(kv, key, entry.revision, encode({ state: "running", fp, at: nowMs }));
  }

  return {
    staleAfterMs,
    claim: (key, fingerprint, nowMs) => claim(key, fingerprint, nowMs),
    async refresh(key, revision, fp, nowMs) {
      try {
        return await kv.update(key, encode({ state: "running", fp, at: nowMs }), revision);
      } catch (error) {
        if (isWrongLastSequence(error)) return null;
        throw error;
      }
    },
    async complete(key, revision, fp, response) {
      // Fails only when a twin took over a claim whose refreshes stopped: its answer stands.
      const body = response.body === null ? null : box.encrypt(response.body);
      await kv.update(key, encode({ state: "done", fp, at: Date.now(), ...response, body, sealed: true }), revision).catch((error: unknown) => {
        if (!isWrongLastSequence(error)) throw error;
      });
    },
    async release(key, revision) {
      await kv.delete(key, { previousSeq: revision }).catch((error: unknown) => {
        if (!isWrongLastSequence(error)) throw error;
      });
    },
  };
}

async function takeOver(kv: KV, key: string, revision: number, record: string): Promise<ClaimResult> {
  try {
    return { kind: "claimed", revision: await kv.update(key, record, revision) };
  } catch (error) {
    if (isWrongLastSequence(error)) return { kind: "in_use" };
    throw error;
  }
}
