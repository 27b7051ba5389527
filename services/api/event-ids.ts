import { createHash } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Topology } from "../../streams/topology.js";
import { isWrongLastSequence } from "../../streams/jetstream-errors.js";

/** How long a client's `eventId` is remembered (API.md "Ingest"). */
export const EVENT_ID_TTL_MS = 24 * 3600 * 1000;

/** The message id an eventId stands for: this request's (`fresh`) or an earlier request's. */
export interface Claim {
  messageId: string;
  fresh: boolean;
}

/**
 * Ingest dedupe by the client's `eventId`, atomic across api processes: the first `claim` of a
 * tenant's eventId within 24 h binds it to a message id, and every later claim gets that same id.
 * The claim is never released: a request that claimed and then failed (or crashed) before its
 * append leaves a message id whose subject is still empty, and the client's retry appends to it.
 */
export interface EventIdClaims {
  claim(tenantId: string, eventId: string, messageId: string): Promise<Claim>;
}

const keyOf = (tenantId: string, eventId: string) => `${tenantId}.${createHash("sha256").update(eventId).digest("hex")}`;

/** Opens (creating when absent) the KV bucket `<PREFIX>_EVENT_IDS`; call once at startup. */
export function createEventIdClaims(nc: NatsConnection, topology: Topology): Promise<EventIdClaims> {
  return openClaims(nc, topology, "event_ids", EVENT_ID_TTL_MS);
}

/**
 * Claims of the same kind in the KV bucket `<PREFIX>_<PURPOSE>`, remembered for `ttlMs` (the
 * inbound sources' provider delivery ids use one of their own).
 */
export async function openClaims(nc: NatsConnection, topology: Topology, purpose: string, ttlMs: number): Promise<EventIdClaims> {
  const kv = await new Kvm(nc).create(topology.bucketName(purpose), { ttl: ttlMs, replicas: topology.replicas });
  return { claim: (tenantId, eventId, messageId) => claim(kv, keyOf(tenantId, eventId), messageId) };
}

async function claim(kv: KV, key: string, messageId: string, retries = 2): Promise<Claim> {
  try {
    await kv.create(key, messageId);
    return { messageId, fresh: true };
  } catch (error) {
    if (!isWrongLastSequence(error)) throw error;
  }
  const entry = await kv.get(key);
  if (entry && entry.operation === "PUT") return { messageId: entry.string(), fresh: false };
  // The entry expired or was purged between our create and get: try again.
  if (retries > 0) return claim(kv, key, messageId, retries - 1);
  throw new Error(`event id claim ${key} keeps changing`);
}
