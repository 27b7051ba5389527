import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { sql } from "slonik";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { createTestDatabase } from "../test/support/postgres.js";
import { createDatabase, ensureDatabaseExists, transaction } from "./db.js";
import { listMigrations, migrate, migrationsApplied, splitStatements } from "./migrate.js";
import { withAllTenants, withTenant } from "./tenant-scope.js";

describe("database setup", () => {
  it("creates a missing database, and leaves an existing one alone", async () => {
    const database = await createTestDatabase();
    await database.drop(); // now its name is free
    await ensureDatabaseExists(database.url);
    await ensureDatabaseExists(database.url);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.end();
    await database.drop();
  });

  it("migrates once when several processes start together", async () => {
    const database = await createTestDatabase();
    const pools = await Promise.all([1, 2, 3].map(() => createDatabase(database.url)));
    try {
      expect(await migrationsApplied(pools[0]!)).toBe(false);
      const applied = await Promise.all(pools.map((pool) => migrate(pool)));
      // Each file once, by whichever process reached it first (so not in order across processes).
      expect(applied.flat().sort((a, b) => a - b)).toEqual((await listMigrations()).map((m) => m.version));
      expect(await migrationsApplied(pools[1]!)).toBe(true);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
      await database.drop();
    }
  });

  it("splits SQL files at top-level semicolons only", () => {
    const text = "-- a; comment\nCREATE TABLE a (x text DEFAULT ';');\n/* b; */ CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- end\n";
    expect(splitStatements(text)).toEqual([
      "-- a; comment\nCREATE TABLE a (x text DEFAULT ';')",
      "/* b; */ CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
    ]);
  });
});

describe("transactions", () => {
  it("commits what its work did, rolls back what a failing one did, and leaves the pool usable; without an AsyncLocalStorage run (Node 20's promise hooks stay off)", async () => {
    const database = await createTestDatabase();
    const db = await createDatabase(database.url, { maximumPoolSize: 1 });
    const runs = vi.spyOn(AsyncLocalStorage.prototype, "run");
    try {
      await migrate(db);
      runs.mockClear();
      await db.query(sql.unsafe`CREATE TABLE tx_probe (n integer)`);
      await transaction(db, (tx) => tx.query(sql.unsafe`INSERT INTO tx_probe VALUES (1)`));
      const failure = await transaction(db, async (tx) => {
        await tx.query(sql.unsafe`INSERT INTO tx_probe VALUES (2)`);
        throw new Error("work failed");
      }).catch((error: unknown) => error);
      expect((failure as Error).message).toBe("work failed");
      // The one pooled connection is back, outside any transaction.
      expect(await db.anyFirst(sql.type(z.object({ n: z.number() }))`SELECT n FROM tx_probe ORDER BY n`)).toEqual([1]);
      await withAllTenants(db, (tx) => tx.query(sql.unsafe`SELECT 1`));
      await withTenant(db, "ten_tx", (tx) => tx.query(sql.unsafe`SELECT 1`));
      expect(runs).not.toHaveBeenCalled();
    } finally {
      runs.mockRestore();
      await db.end();
      await database.drop();
    }
  });
});
