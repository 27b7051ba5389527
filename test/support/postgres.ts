import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server tests use: the one in DATABASE_URL when set, else the machine's Postgres 15. */
const SERVER_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const withDatabase = (name: string): string => {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase("postgres") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  url: string;
  /** Terminates every connection to the database and drops it. */
  drop(): Promise<void>;
}

/** Creates an empty database `zen_test_<random>` on the test server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `zen_test_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  return {
    url: withDatabase(name),
    drop: () =>
      admin(async (client) => {
        await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
        await client.query(`DROP DATABASE IF EXISTS "${name}"`);
      }),
  };
}

/** Every row of every table in the database's public schema, as JSON text (read as the superuser, so past row-level security). */
export async function allRows(url: string): Promise<Array<{ table: string; row: string }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
    const rows: Array<{ table: string; row: string }> = [];
    for (const { tablename } of tables.rows) {
      const result = await client.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM public."${tablename}" t`);
      rows.push(...result.rows.map(({ row }) => ({ table: tablename, row })));
    }
    return rows;
  } finally {
    await client.end();
  }
}
