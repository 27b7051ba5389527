import pg from "pg";
import { z } from "zod";
import { type CommonQueryMethods, createPool, createTypeParserPreset, SchemaValidationError, sql, type DatabasePool, type Interceptor } from "slonik";
import { createPgDriverFactory } from "@slonik/pg-driver";

/** The read-model database: a slonik pool. */
export type Database = DatabasePool;
/** A connection inside {@link transaction}. */
export type Tx = CommonQueryMethods;
/** What a read query runs on: the pool, or a transaction (e.g. a tenant-bound one, `withTenant`). */
export type Queryable = CommonQueryMethods;

/**
 * Runs `work` in a transaction on one pooled connection, rolled back when `work` throws. Not
 * slonik's `db.transaction`: that one runs in an AsyncLocalStorage, and its first run turns Node
 * 20's promise hooks on for every promise the process makes from then on (a few per cent of the
 * one-process platform's CPU, the ingest path's included). Nested transactions are not offered.
 */
export async function transaction<T>(db: Database, work: (tx: Tx) => Promise<T>): Promise<T> {
  const outcome = await db.connect(async (connection) => {
    await connection.query(sql.unsafe`START TRANSACTION`);
    try {
      const value = await work(connection);
      await connection.query(sql.unsafe`COMMIT`);
      return { ok: true as const, value };
    } catch (error) {
      // A ROLLBACK that fails too (the connection is gone) throws from here, and slonik destroys the connection.
      await connection.query(sql.unsafe`ROLLBACK`);
      return { ok: false as const, error };
    }
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * Rows of `sql.type(schema)` queries are validated by the schema. slonik 47 only hands the parser
 * to interceptors; `transformRowAsync` is the hook that works with async zod parsing.
 */
const resultParserInterceptor: Interceptor = {
  name: "zen-result-parser",
  transformRowAsync: async (context, query, row) => {
    const parser = context.resultParser;
    if (!parser) return row;
    const result = await parser.safeParseAsync(row);
    if (!result.success) throw new SchemaValidationError(query, row, result.error.issues);
    return result.data as typeof row;
  },
};

/**
 * Type parsers: slonik's presets, except `timestamptz` comes back as an ISO 8601 UTC string
 * (what the API returns) and `int8` as a JS number (stream sequences and counts stay far below
 * 2^53; a larger value throws rather than silently losing precision).
 */
const typeParsers = [
  ...createTypeParserPreset().filter((p) => p.name !== "timestamptz" && p.name !== "int8"),
  { name: "timestamptz", parse: (value: string) => new Date(value).toISOString() },
  {
    name: "int8",
    parse: (value: string) => {
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${value} exceeds Number.MAX_SAFE_INTEGER`);
      return n;
    },
  },
];

/** A slonik pool on `url` (at most 10 connections, validating typed queries). */
export async function createDatabase(url: string, options: { maximumPoolSize?: number } = {}): Promise<Database> {
  return createPool(url, {
    driverFactory: createPgDriverFactory(),
    interceptors: [resultParserInterceptor],
    typeParsers,
    maximumPoolSize: options.maximumPoolSize ?? 10,
  });
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Creates the database named in `url` when it does not exist (error 3D000), by connecting to the
 * `postgres` database on the same server, so a fresh machine needs no setup. A concurrent creator
 * winning the race (42P04 duplicate_database) is fine.
 */
export async function ensureDatabaseExists(url: string): Promise<void> {
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== "3D000") throw error;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  } catch (error) {
    if ((error as { code?: string }).code !== "42P04") throw error;
  } finally {
    await client.end();
  }
}

/** Whether the pool's user escapes row-level security (a superuser, or a role with BYPASSRLS). */
export async function bypassesRowSecurity(db: Database): Promise<boolean> {
  return db.oneFirst(sql.type(z.object({ bypasses: z.boolean() }))`SELECT rolsuper OR rolbypassrls AS bypasses FROM pg_roles WHERE rolname = current_user`);
}
