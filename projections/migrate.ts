import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "slonik";
import { z } from "zod";
import { transaction, type Database } from "./db.js";

/**
 * Where the `.sql` files are. From source (tsx, vitest) they sit beside this file; `tsc` does not
 * copy them into `dist/`, so from `dist/projections/` we fall back to `../../projections/migrations`
 * (the source folder, which ships with the build: the Dockerfile must copy `projections/migrations`).
 */
export function migrationsDirectory(): string {
  const beside = fileURLToPath(new URL("./migrations/", import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL("../../projections/migrations/", import.meta.url));
}

export interface MigrationFile {
  version: number;
  name: string;
  path: string;
}

const FILE = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/;

export async function listMigrations(dir = migrationsDirectory()): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).flatMap((file) => {
    const match = FILE.exec(file);
    return match ? [{ version: Number(match[1]), name: match[2]!, path: join(dir, file) }] : [];
  });
  return files.sort((a, b) => a.version - b.version);
}

/** Any two distinct numbers would do: the key of the lock every migrating process takes. */
const MIGRATION_LOCK = sql.fragment`pg_advisory_xact_lock(7365001, 1)`;

/** A query from trusted text (a migration file's statement); slonik needs a template literal. */
function rawQuery(text: string) {
  const strings = Object.assign([text], { raw: Object.freeze([text]) });
  return sql.unsafe(strings as unknown as TemplateStringsArray);
}

/**
 * Splits a file into statements at top-level `;` (slonik refuses multi-statement queries), aware of
 * `--` and block comments, quoted strings and identifiers, and `$tag$` bodies.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const skipTo = (end: string, from: number) => {
    const at = text.indexOf(end, from);
    return at < 0 ? text.length : at + end.length;
  };
  while (i < text.length) {
    const two = text.slice(i, i + 2);
    const ch = text[i]!;
    if (two === "--") i = skipTo("\n", i);
    else if (two === "/*") i = skipTo("*/", i + 2);
    else if (ch === "'" || ch === '"') i = skipTo(ch, i + 1);
    else if (ch === "$" && /^\$[A-Za-z_]*\$/.test(text.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i))![0];
      i = skipTo(tag, i + tag.length);
    } else if (ch === ";") {
      out.push(text.slice(start, i));
      i += 1;
      start = i;
    } else i += 1;
  }
  out.push(text.slice(start));
  // Drop pieces holding only whitespace and comments.
  return out.filter((stmt) => stmt.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, "").trim() !== "").map((stmt) => stmt.trim());
}

/**
 * Applies pending migrations in order, each in its own transaction that also records it in
 * `schema_migrations`. Every transaction first takes one advisory lock, so processes starting
 * together apply each file once. Then row-level security is made to cover every tenant table.
 * Returns the versions it applied.
 */
export async function migrate(db: Database, dir = migrationsDirectory()): Promise<number[]> {
  const applied: number[] = [];
  for (const file of await listMigrations(dir)) {
    const text = await readFile(file.path, "utf8");
    const done = await transaction(db, async (tx) => {
      await tx.query(sql.unsafe`SELECT ${MIGRATION_LOCK}`);
      await tx.query(sql.unsafe`
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const exists = await tx.exists(sql.unsafe`SELECT 1 FROM schema_migrations WHERE version = ${file.version}`);
      if (exists) return false;
      for (const statement of splitStatements(text)) await tx.query(rawQuery(statement));
      await tx.query(sql.unsafe`INSERT INTO schema_migrations (version, name) VALUES (${file.version}, ${file.name})`);
      return true;
    });
    if (done) applied.push(file.version);
  }
  if (applied.length > 0) await secureTenantTables(db);
  return applied;
}

/**
 * Row-level security on every table with a `tenant_id` (007_row_level_security.sql), again after
 * any migration: a tenant table added by a migration that ran after 006 (numbered before or after
 * it) is covered at once. Idempotent; nothing before 006 is applied.
 */
async function secureTenantTables(db: Database): Promise<void> {
  await transaction(db, async (tx) => {
    await tx.query(sql.unsafe`SELECT ${MIGRATION_LOCK}`);
    const defined = await tx.oneFirst(sql.type(z.object({ f: z.string().nullable() }))`
      SELECT to_regprocedure('zen_secure_tenant_tables()')::text AS f`);
    if (defined !== null) await tx.query(sql.unsafe`SELECT zen_secure_tenant_tables()`);
  });
}

/** True when every migration file has been applied (for `/readyz`). */
export async function migrationsApplied(db: Database, dir = migrationsDirectory()): Promise<boolean> {
  const table = await db.oneFirst(sql.type(z.object({ t: z.string().nullable() }))`
    SELECT to_regclass('schema_migrations')::text AS t`);
  if (table === null) return false;
  const versions = await db.anyFirst(sql.type(z.object({ version: z.number() }))`SELECT version FROM schema_migrations`);
  const have = new Set(versions);
  return (await listMigrations(dir)).every((file) => have.has(file.version));
}
