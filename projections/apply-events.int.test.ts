import { sql } from "slonik";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createTestDatabase, type TestDatabase } from "../test/support/postgres.js";
import { createDatabase, type Database } from "./db.js";
import { migrate } from "./migrate.js";
import { applyEvent, applyEvents, readModelTables } from "./read-models/index.js";
import type { Sequenced } from "./read-models/shared.js";
import { rebuildReadModels } from "./rebuild.js";
import { randomCuts, randomHistory } from "./testing/random-history.js";
import { withAllTenants } from "./tenant-scope.js";

/**
 * The set-based path against one-by-one application, on random histories of the hot event types
 * (any order: outcomes before attempts, another tenant's ids, replays mixed in) with registry events
 * between them. A failing seed replays exactly (`randomHistory(seed, …)`).
 */
describe("applying events set-based", () => {
  let database: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDatabase(database.url);
    await migrate(db);
  });
  afterAll(async () => {
    await db?.end();
    await database?.drop();
  });

  const dump = async () => {
    const out: Record<string, string[]> = {};
    for (const table of readModelTables) {
      out[table] = [
        ...(await withAllTenants(db, (tx) =>
          tx.anyFirst(sql.type(z.object({ row: z.string() }))`
        SELECT to_jsonb(t)::text AS row FROM ${sql.identifier([table])} t ORDER BY 1`),
        )),
      ];
    }
    return out;
  };
  const oneByOne = (events: readonly Sequenced[]) =>
    withAllTenants(db, async (tx) => {
      for (const e of events) await applyEvent(tx, e.envelope, e.seq);
    });
  const inBatches = (batches: readonly (readonly Sequenced[])[]) =>
    withAllTenants(db, async (tx) => {
      for (const batch of batches) await applyEvents(tx, batch);
    });

  it("gives the rows one-by-one application gives, however the events are cut into batches", async () => {
    let withOutcomes = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const events = randomHistory(seed, 20 + (seed % 5) * 15);
      await rebuildReadModels(db);
      await oneByOne(events);
      const expected = await dump();
      if (expected.dlq_entries!.length > 0 && expected.delivery_attempts!.some((row) => /"outcome": "/.test(row))) withOutcomes += 1;

      await rebuildReadModels(db);
      await inBatches([events]);
      expect(await dump(), `seed ${seed}, one batch`).toEqual(expected);

      await rebuildReadModels(db);
      await inBatches(randomCuts(events, seed, 12));
      expect(await dump(), `seed ${seed}, random batches`).toEqual(expected);
    }
    expect(withOutcomes).toBeGreaterThan(10); // the histories reach the DLQ and attempt outcomes
  });

  it("changes nothing when events are applied again: twice, late, or in reverse", async () => {
    for (let seed = 41; seed <= 55; seed++) {
      const events = randomHistory(seed, 60);
      await rebuildReadModels(db);
      await inBatches([events]);
      const once = await dump();
      await inBatches([events]);
      await inBatches(randomCuts(events.slice(0, events.length / 2), seed, 8));
      await oneByOne([...events].reverse());
      expect(await dump(), `seed ${seed}`).toEqual(once);
    }
  });
});
