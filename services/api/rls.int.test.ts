import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { z } from "zod";
import { createReadModels } from "./read-models.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/postgres.js";
import { applyBatch } from "../../projections/checkpoint.js";
import { bypassesRowSecurity, createDatabase, type Database, type Tx } from "../../projections/db.js";
import { migrate } from "../../projections/migrate.js";
import { parseEnvelope } from "../../projections/read-models/shared.js";
import { envelopes } from "../../projections/testing/harness.js";
import { API_READER_ROLE, withAllTenants, withTenant } from "../../projections/tenant-scope.js";

const A = "ten_rlsA";
const B = "ten_rlsB";

const TenantRows = z.object({ tenant_id: z.string() });
const Catalog = z.object({
  table: z.string(),
  rls: z.boolean(),
  forced: z.boolean(),
  policies: z.array(z.string()).nullable(),
  isolation_using: z.string().nullable(),
  isolation_check: z.string().nullable(),
  all_using: z.string().nullable().optional(),
});

/** Two tenants' rows in two tenant tables, written as the migrating (owner, superuser) user. */
async function seed(db: Database) {
  for (const [tenant, n] of [
    [A, 1],
    [A, 2],
    [B, 3],
  ] as const) {
    await db.query(sql.unsafe`
      INSERT INTO audit_log (event_id, tenant_id, occurred_at, actor_kind, actor_id, action, aggregate_type, aggregate_id, request_id, changes)
      VALUES (${`evt_${n}`}, ${tenant}, now(), 'operator', 'admin', 'endpoint.registered', 'endpoint', ${`ep_${n}`}, ${`req_${n}`}, '{}'::jsonb)`);
    await db.query(sql.unsafe`
      INSERT INTO endpoints (id, tenant_id, url, event_types, active, created_at, updated_at, last_seq)
      VALUES (${`ep_${n}`}, ${tenant}, 'https://example.com/h', ARRAY['*'], TRUE, now(), now(), ${n})`);
  }
}

/** Every tenant of every audit row the query sees: it has no tenant filter of its own. */
const unfilteredTenants = (tx: Pick<Tx, "anyFirst">) => tx.anyFirst(sql.type(TenantRows)`SELECT tenant_id FROM audit_log ORDER BY event_id`);

describe("row-level security on the read models", () => {
  let database: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createDatabase(database.url);
    await migrate(db);
    await seed(db);
  });
  afterAll(async () => {
    await db?.end();
    await database?.drop();
  });

  it("a query that forgets WHERE tenant_id sees only the tenant set for the transaction", async () => {
    expect(await withTenant(db, A, unfilteredTenants)).toEqual([A, A]);
    expect(await withTenant(db, B, unfilteredTenants)).toEqual([B]);
    expect(await withTenant(db, B, (tx) => tx.anyFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM endpoints`))).toEqual(["ep_3"]);
    // Every tenant only for a transaction that opts in: the projector, a rebuild, the DLQ gauge.
    expect(await withAllTenants(db, unfilteredTenants)).toEqual([A, A, B]);
  });

  it("the reader role with no tenant set sees nothing", async () => {
    const seen = await db.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET LOCAL ROLE ${sql.identifier([API_READER_ROLE])}`);
      return unfilteredTenants(tx);
    });
    expect(seen).toEqual([]);
  });

  it("the reader role cannot bypass RLS, log in, or write", async () => {
    const role = await db.one(sql.type(z.object({ rolbypassrls: z.boolean(), rolsuper: z.boolean(), rolcanlogin: z.boolean() }))`
      SELECT rolbypassrls, rolsuper, rolcanlogin FROM pg_roles WHERE rolname = ${API_READER_ROLE}`);
    expect(role).toEqual({ rolbypassrls: false, rolsuper: false, rolcanlogin: false });
    await expect(withTenant(db, A, (tx) => tx.query(sql.unsafe`DELETE FROM audit_log`))).rejects.toThrow(/permission denied/);
  });

  it("WITH CHECK refuses an INSERT or UPDATE that would put a row in another tenant", async () => {
    // Give the reader write privileges in this database only, so RLS (not a missing GRANT) is what refuses.
    await db.query(sql.unsafe`GRANT INSERT, UPDATE ON audit_log TO ${sql.identifier([API_READER_ROLE])}`);
    try {
      await expect(
        withTenant(db, A, (tx) =>
          tx.query(sql.unsafe`
          INSERT INTO audit_log (event_id, tenant_id, occurred_at, actor_kind, actor_id, action, aggregate_type, aggregate_id, request_id, changes)
          VALUES ('evt_forged', ${B}, now(), 'operator', 'admin', 'x', 'endpoint', 'ep_x', 'req_x', '{}'::jsonb)`),
        ),
      ).rejects.toThrow(/row-level security/);
      await expect(withTenant(db, A, (tx) => tx.query(sql.unsafe`UPDATE audit_log SET tenant_id = ${B} WHERE event_id = 'evt_1'`))).rejects.toThrow(/row-level security/);
      // Another tenant's rows are not even there to update.
      const touched = await withTenant(db, A, (tx) => tx.query(sql.unsafe`UPDATE audit_log SET action = 'tampered' WHERE event_id = 'evt_3'`));
      expect(touched.rowCount).toBe(0);
      // Its own tenant's rows it may write.
      const own = await withTenant(db, A, (tx) => tx.query(sql.unsafe`UPDATE audit_log SET action = action WHERE event_id = 'evt_1'`));
      expect(own.rowCount).toBe(1);
    } finally {
      await db.query(sql.unsafe`REVOKE INSERT, UPDATE ON audit_log FROM ${sql.identifier([API_READER_ROLE])}`);
    }
    expect(await unfilteredTenants(db)).toEqual([A, A, B]);
  });

  it("a pooled connection reused after one tenant's transaction keeps nothing of it (pool of 1)", async () => {
    const single = await createDatabase(database.url, { maximumPoolSize: 1 });
    const Session = z.object({ pid: z.number(), user: z.string(), tenant: z.string().nullable() });
    const session = (tx: Pick<Tx, "one">) =>
      tx.one(sql.type(Session)`
      SELECT pg_backend_pid() AS pid, current_user::text AS user, current_setting('app.tenant_id', true) AS tenant`);
    try {
      const inside = await withTenant(single, A, async (tx) => ({ seen: await unfilteredTenants(tx), ...(await session(tx)) }));
      expect(inside).toMatchObject({ seen: [A, A], user: API_READER_ROLE, tenant: A });
      const after = await session(single);
      expect(after.pid).toBe(inside.pid); // the same connection
      expect(after.user).not.toBe(API_READER_ROLE);
      expect(after.tenant ?? "").toBe("");
      const nextReader = await single.transaction(async (tx) => {
        await tx.query(sql.unsafe`SET LOCAL ROLE ${sql.identifier([API_READER_ROLE])}`);
        return { seen: await unfilteredTenants(tx), ...(await session(tx)) };
      });
      expect(nextReader).toMatchObject({ pid: inside.pid, seen: [] });
    } finally {
      await single.end();
    }
  });

  it("every table with a tenant_id has RLS enabled and forced, and the tenant policy on USING and WITH CHECK", async () => {
    const tables = await db.any(sql.type(Catalog)`
      SELECT c.relname AS "table", c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
             (SELECT array_agg(p.polname::text ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
             (SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS isolation_using,
             (SELECT pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS isolation_check,
             (SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'all_tenants') AS all_using
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
      ORDER BY 1`);
    // The read models of 001–004 at least; any later tenant table (e.g. sources) must pass the same checks.
    expect(tables.map((t) => t.table)).toEqual(
      expect.arrayContaining(["api_keys", "audit_log", "deliveries", "delivery_attempts", "dlq_entries", "endpoints", "messages", "replays"]),
    );
    for (const t of tables) {
      expect({ table: t.table, rls: t.rls, forced: t.forced }).toEqual({ table: t.table, rls: true, forced: true });
      expect(t.policies, t.table).toEqual(["all_tenants", "tenant_isolation"]);
      expect(t.all_using, t.table).toMatch(/current_setting\('app\.projector'::text, true\) = 'on'::text/);
      for (const expr of [t.isolation_using, t.isolation_check]) {
        expect(expr, t.table).toMatch(/tenant_id = current_setting\('app\.tenant_id'::text, true\)/);
      }
    }
  });

  it("covers a tenant table added by a later migration, and migrating again changes nothing", async () => {
    await db.query(sql.unsafe`CREATE TABLE late_tenant_table (id text PRIMARY KEY, tenant_id text NOT NULL)`);
    expect(await db.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT zen_secure_tenant_tables() AS n`)).toBeGreaterThanOrEqual(9);
    const late = await db.one(sql.type(z.object({ rls: z.boolean(), forced: z.boolean() }))`
      SELECT relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class WHERE relname = 'late_tenant_table'`);
    expect(late).toEqual({ rls: true, forced: true });
    expect(await migrate(db)).toEqual([]);
  });

  it("the api's reads run as the reader role, tenant-bound", async () => {
    const reads = createReadModels(db);
    expect((await reads.listEndpoints(A, {})).data.map((e) => e.id).sort()).toEqual(["ep_1", "ep_2"]);
    expect(await reads.getEndpoint(A, "ep_3")).toBeNull();
    expect((await reads.listAudit(B, {})).data.map((e) => e.id)).toEqual(["evt_3"]);
    // Without the reader's SELECT the api cannot read at all: it does not read as the owner.
    await db.query(sql.unsafe`REVOKE SELECT ON endpoints FROM ${sql.identifier([API_READER_ROLE])}`);
    try {
      await expect(reads.listEndpoints(A, {})).rejects.toThrow(/permission denied/);
    } finally {
      await db.query(sql.unsafe`GRANT SELECT ON endpoints TO ${sql.identifier([API_READER_ROLE])}`);
    }
  });
});

describe("the reader role across databases", () => {
  it("several databases migrating at once all end up secured (the role is cluster-wide, created once)", async () => {
    const databases = await Promise.all([1, 2, 3].map(() => createTestDatabase()));
    const pools = await Promise.all(databases.map((d) => createDatabase(d.url)));
    try {
      await Promise.all(pools.map((pool) => migrate(pool)));
      for (const pool of pools) {
        const unsecured = await pool.anyFirst(sql.type(z.object({ relname: z.string() }))`
          SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)`);
        expect(unsecured).toEqual([]);
        expect(await withTenant(pool, A, unfilteredTenants)).toEqual([]);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
      await Promise.all(databases.map((d) => d.drop()));
    }
  });
});

/** Runs `fn` on the server's `postgres` database as the test's (superuser) user. */
async function asAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres");
  url.pathname = "/postgres";
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe("a non-superuser owner without BYPASSRLS (production's DATABASE_URL user)", () => {
  // A role and a database of this test only, dropped after it.
  const owner = `zen_rls_owner_${randomBytes(4).toString("hex")}`;
  const name = `zen_test_${randomBytes(6).toString("hex")}`;
  let db: Database;

  beforeAll(async () => {
    await asAdmin(async (c) => {
      await c.query(`CREATE ROLE "${owner}" LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE`);
      await c.query(`CREATE DATABASE "${name}" OWNER "${owner}"`);
    });
    const url = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres");
    url.username = owner;
    url.pathname = `/${name}`;
    db = await createDatabase(url.toString());
  });
  afterAll(async () => {
    await db?.end();
    await asAdmin(async (c) => {
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
      await c.query(`DROP DATABASE IF EXISTS "${name}"`);
      await c.query(`DROP ROLE IF EXISTS "${owner}"`);
    });
  });

  it("is told apart from a superuser, which row-level security does not hold (the platform warns of one)", async () => {
    expect(await bypassesRowSecurity(db)).toBe(false);
    const superuser = await createDatabase(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres");
    try {
      expect(await bypassesRowSecurity(superuser)).toBe(true);
    } finally {
      await superuser.end();
    }
  });

  it("migrates (joining the reader role), projects every tenant's events, and is held to a tenant once one is set", async () => {
    await migrate(db);
    const member = await db.oneFirst(sql.type(z.object({ m: z.boolean() }))`SELECT pg_has_role(current_user, ${API_READER_ROLE}, 'MEMBER') AS m`);
    expect(member).toBe(true);
    // The projector's own code, as this owner: two tenants in one batch.
    const events = [A, B].flatMap((tenant) => {
      const event = envelopes(tenant);
      return [
        event("endpoint", `ep_own_${tenant}`, "endpoint.registered", { url: "https://example.com/h", eventTypes: ["*"], secret: "enc:v1:k1:c2VjcmV0" }),
        event("endpoint", `ep_own_${tenant}`, "endpoint.updated", { description: "changed" }),
      ];
    });
    const applied = await applyBatch(
      db,
      events.map((e, i) => ({ seq: i + 1, envelope: parseEnvelope(e) })),
    );
    expect(applied).toBe(4);
    const everyTenant = (tx: Pick<Tx, "anyFirst">) => tx.anyFirst(sql.type(TenantRows)`SELECT tenant_id FROM audit_log ORDER BY tenant_id`);
    expect(await withAllTenants(db, everyTenant)).toEqual([A, A, B, B]);
    // The owner with a tenant set, even without switching role, sees that tenant only.
    const scoped = await db.transaction(async (tx) => {
      await tx.query(sql.unsafe`SELECT set_config('app.tenant_id', ${A}, true)`);
      return tx.anyFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM endpoints`);
    });
    expect(scoped).toEqual([`ep_own_${A}`]);
    expect(await withTenant(db, B, unfilteredTenants)).toEqual([B, B]);
    const reader = await db.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET LOCAL ROLE ${sql.identifier([API_READER_ROLE])}`);
      return unfilteredTenants(tx);
    });
    expect(reader).toEqual([]);
  });

  it("the owner (the api's login) with nothing set sees nothing and writes nothing: only an explicit opt-in reaches every tenant", async () => {
    expect(await unfilteredTenants(db)).toEqual([]);
    expect(await db.anyFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM endpoints`)).toEqual([]);
    const updated = await db.query(sql.unsafe`UPDATE audit_log SET action = action`);
    expect(updated.rowCount).toBe(0);
    await expect(
      db.query(sql.unsafe`
      INSERT INTO audit_log (event_id, tenant_id, occurred_at, actor_kind, actor_id, action, aggregate_type, aggregate_id, request_id, changes)
      VALUES ('evt_unset', ${A}, now(), 'operator', 'admin', 'x', 'endpoint', 'ep_x', 'req_x', '{}'::jsonb)`),
    ).rejects.toThrow(/row-level security/);
    // The opt-in is transaction-local: the pooled connection forgets it.
    expect(await withAllTenants(db, unfilteredTenants)).toHaveLength(4);
    expect(await unfilteredTenants(db)).toEqual([]);
    // Another role setting it gains nothing: the policy is the owner's.
    const reader = await db.transaction(async (tx) => {
      await tx.query(sql.unsafe`SELECT set_config('role', ${API_READER_ROLE}, true), set_config('app.projector', 'on', true)`);
      return unfilteredTenants(tx);
    });
    expect(reader).toEqual([]);
  });
});
