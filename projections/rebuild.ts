import { sql } from "slonik";
import { READ_MODELS_PROJECTION } from "./checkpoint.js";
import type { Database } from "./db.js";
import { readModelTables } from "./read-models/index.js";

/**
 * Empties every read-model table and resets the checkpoint to 0 in one transaction; the projector
 * then replays the stream from its first event. A running projector notices at its next batch
 * (the checkpoint is below where it left it) and restarts its consumer from the start.
 */
export async function rebuildReadModels(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    const tables = readModelTables.map((name) => sql.identifier([name]));
    await tx.query(sql.unsafe`TRUNCATE ${sql.join(tables, sql.fragment`, `)}`);
    await tx.query(sql.unsafe`
      INSERT INTO projection_checkpoints (projection, last_seq) VALUES (${READ_MODELS_PROJECTION}, 0)
      ON CONFLICT (projection) DO UPDATE SET last_seq = 0`);
  });
}
