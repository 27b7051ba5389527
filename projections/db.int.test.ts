import pg from "pg";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../test/support/postgres.js";
import { createDatabase, ensureDatabaseExists } from "./db.js";
import { listMigrations, migrate, migrationsApplied, splitStatements } from "./migrate.js";

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
