import { sql } from "slonik";
import { READ_MODELS_PROJECTION } from "./checkpoint.js";
import type { Database } from "./db.js";
import { readModelTables } from "./read-models/index.js";
import { withAllTenants } from "./tenant-scope.js";

/**
 * Empties every read-model table and resets the checkpoint to 0 in one transaction; the projector
 * then replays the stream from its first event. A running projector notices at its next batch
 * (the checkpoint is below where it left it) and restarts its consumer from the start. It opts in
 * to every tenant's rows like the projector (TRUNCATE ignores row-level security, but a rebuild
 * that came to delete rows would not).
 */
export async function rebuildReadModels(db: Database): Promise<void> {
  await withAllTenants(db, async (tx) => {
    const tables = readModelTables.map((name) => sql.identifier([name]));
    await tx.query(sql.unsafe`TRUNCATE ${sql.join(tables, sql.fragment`, `)}`);
    await tx.query(sql.unsafe`
      INSERT INTO projection_checkpoints (projection, last_seq) VALUES (${READ_MODELS_PROJECTION}, 0)
      ON CONFLICT (projection) DO UPDATE SET last_seq = 0`);
  });
}
