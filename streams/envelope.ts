import { createHash } from "node:crypto";
import { stringify } from "safe-stable-stringify";
import type { Envelope } from "../contracts/envelope.js";

export type UnsealedEnvelope = Omit<Envelope, "hash">;

/** sha256 over the canonical (key-sorted) JSON of every field but `hash`, `prevHash` included. */
export function hashEnvelope(envelope: UnsealedEnvelope): string {
  return createHash("sha256").update(stringify(envelope)).digest("hex");
}

export function sealEnvelope(envelope: UnsealedEnvelope): Envelope {
  return { ...envelope, hash: hashEnvelope(envelope) };
}

export type ChainVerdict = { ok: true } | { ok: false; index: number; reason: string };

/**
 * Recomputes the hash chain of one aggregate's events, oldest first: every hash must match its
 * content and every `prevHash` the hash before it. What an auditor runs over a replayed subject.
 */
export function verifyChain(envelopes: readonly Envelope[]): ChainVerdict {
  let previous: string | null = null;
  for (const [index, envelope] of envelopes.entries()) {
    const { hash, ...unsealed } = envelope;
    if (envelope.prevHash !== previous) return { ok: false, index, reason: "prevHash does not link to the previous event" };
    if (hashEnvelope(unsealed) !== hash) return { ok: false, index, reason: "hash does not match the event's content" };
    previous = hash;
  }
  return { ok: true };
}
