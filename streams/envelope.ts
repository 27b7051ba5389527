import { createHash } from "node:crypto";
import { stringify } from "safe-stable-stringify";
import type { Envelope } from "../contracts/envelope.js";

export type UnsealedEnvelope = Omit<Envelope, "hash">;

/** sha256 over the canonical (key-sorted) JSON of every field but `hash`, `prevHash` included. */
export function hashEnvelope(envelope: UnsealedEnvelope): string {
  return sha256(stringify(envelope));
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/**
 * Seals an envelope and serialises it in one pass: the wire JSON is the canonical JSON that was
 * hashed, with `hash` added last (key order does not matter to a JSON reader).
 */
export function sealAndSerialise(envelope: UnsealedEnvelope): { envelope: Envelope; json: string } {
  const canonical = stringify(envelope);
  const hash = sha256(canonical);
  return { envelope: { ...envelope, hash }, json: `${canonical.slice(0, -1)},"hash":"${hash}"}` };
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
