import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "slonik";
import { z } from "zod";
import type { Database } from "./db.js";
import { applyEvents } from "./read-models/index.js";
import { withAllTenants } from "./tenant-scope.js";
import type { KnownEnvelope, Sequenced } from "./read-models/shared.js";

/** The checkpoint row of the read models in `projection_checkpoints`. */
export const READ_MODELS_PROJECTION = "read_models";

/** One stream message, decoded: `envelope` is null for a type to skip (unknown or malformed). */
export interface StreamEvent {
  seq: number;
  envelope: KnownEnvelope | null;
}

const Seq = z.object({ last_seq: z.number() });

/** The stream sequence the read models have applied (0 before the first event). */
export async function readModelSeq(db: Database): Promise<number> {
  const seq = await db.maybeOneFirst(sql.type(Seq)`
    SELECT last_seq FROM projection_checkpoints WHERE projection = ${READ_MODELS_PROJECTION}`);
  return seq ?? 0;
}

/** Waits until the read models have applied `minSeq`, polling every 20 ms; false on timeout. */
export async function waitForSeq(db: Database, minSeq: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await readModelSeq(db)) >= minSeq) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
  }
}

/** The checkpoint is below where the caller left it: a rebuild reset it. */
export class CheckpointRewoundError extends Error {
  constructor(
    readonly checkpoint: number,
    readonly expected: number,
  ) {
    super(`read-model checkpoint is ${checkpoint}, expected at least ${expected} (rebuilt?)`);
    this.name = "CheckpointRewoundError";
  }
}

/**
 * Applies a batch in one transaction together with the checkpoint (the hot events a few set-based
 * statements per table, see {@link applyEvents}). The checkpoint row is locked
 * first and events at or below it are skipped, so a redelivered event, or a second projector that
 * lost its advisory lock without noticing, changes nothing. With `expectedFrom` (the checkpoint the
 * caller last saw), a lower checkpoint throws {@link CheckpointRewoundError} and applies nothing.
 * Returns the new checkpoint. The transaction opts in to every tenant's rows ({@link withAllTenants}).
 */
export async function applyBatch(db: Database, events: readonly StreamEvent[], expectedFrom = 0): Promise<number> {
  return withAllTenants(db, async (tx) => {
    // Creates the row on first use and locks it either way (the no-op update takes the row lock).
    const from = await tx.oneFirst(sql.type(Seq)`
      INSERT INTO projection_checkpoints (projection, last_seq) VALUES (${READ_MODELS_PROJECTION}, 0)
      ON CONFLICT (projection) DO UPDATE SET last_seq = projection_checkpoints.last_seq
      RETURNING last_seq`);
    if (from < expectedFrom) throw new CheckpointRewoundError(from, expectedFrom);
    let last = from;
    const fresh: Sequenced[] = [];
    for (const event of events) {
      if (event.seq <= last) continue;
      if (event.envelope) fresh.push({ seq: event.seq, envelope: event.envelope });
      last = event.seq;
    }
    await applyEvents(tx, fresh);
    if (last > from) {
      await tx.query(sql.unsafe`
        UPDATE projection_checkpoints SET last_seq = ${last} WHERE projection = ${READ_MODELS_PROJECTION}`);
    }
    return last;
  });
}
