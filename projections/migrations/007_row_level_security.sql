-- Row-level security on every read-model table with a tenant_id column (issue 5, part 6).
--
-- * Policy `tenant_isolation` (every role): a row is visible, and may be written, only when its
--   tenant_id equals the transaction's `app.tenant_id` (`set_config('app.tenant_id', $1, true)`).
--   Unset (NULL, or '' once a previous transaction on the connection set it locally), nothing matches.
-- * The api reads as `zen_api_reader` (NOLOGIN, NOBYPASSRLS, SELECT only): every tenant read runs in
--   a transaction that does `SET LOCAL ROLE zen_api_reader` and sets `app.tenant_id` locally, so a
--   query that forgets `WHERE tenant_id` still sees one tenant, and a pooled connection forgets both
--   at COMMIT. Roles are cluster-wide: this one is shared by every database of the cluster (its
--   privileges are per database) and never dropped by a migration.
-- * FORCE applies the policies to the tables' owner too, and the owner is also the api's login: with
--   nothing set it sees nothing, like anyone, so an api query that forgets `withTenant` finds no
--   rows. The owner has one more policy, `all_tenants`: a transaction that opts in explicitly with
--   `set_config('app.projector', 'on', true)` (`withAllTenants()`: the projector, a rebuild, the DLQ
--   gauge) sees and writes every row. Only the owner: another role setting it gains nothing.
--   Superusers and BYPASSRLS roles skip RLS altogether.
-- * `zen_secure_tenant_tables()` does all of this for every such table and is idempotent; `migrate()`
--   calls it again after applying any migration, so a tenant table added later (e.g. 005_sources,
--   whatever order it lands in) is covered too.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zen_api_reader') THEN
    BEGIN
      CREATE ROLE zen_api_reader NOLOGIN NOBYPASSRLS NOSUPERUSER NOINHERIT;
    EXCEPTION
      -- Another database's migration created it at the same moment: it exists now.
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'role zen_api_reader is missing and % may not create it', current_user
          USING HINT = 'as a superuser: CREATE ROLE zen_api_reader NOLOGIN NOBYPASSRLS; GRANT zen_api_reader TO ' || current_user;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zen_api_reader' AND (rolsuper OR rolbypassrls OR rolcanlogin)) THEN
    RAISE EXCEPTION 'role zen_api_reader must be NOLOGIN, NOSUPERUSER and NOBYPASSRLS';
  END IF;
  -- The api's user switches to the reader role (a superuser may without membership).
  IF NOT pg_has_role(current_user, 'zen_api_reader', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT zen_api_reader TO %I', current_user);
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION zen_secure_tenant_tables() RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  t record;
  secured integer := 0;
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO zen_api_reader', current_schema());
  FOR t IN
    SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner
    FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind IN ('r', 'p')
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.name);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.name);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t.name);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I FOR ALL TO PUBLIC'
      ' USING (tenant_id = current_setting(''app.tenant_id'', true))'
      ' WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t.name);
    -- A development database that applied an earlier draft of this file has `owner_unscoped`.
    EXECUTE format('DROP POLICY IF EXISTS owner_unscoped ON %I', t.name);
    EXECUTE format('DROP POLICY IF EXISTS all_tenants ON %I', t.name);
    EXECUTE format(
      'CREATE POLICY all_tenants ON %I FOR ALL TO %I'
      ' USING (current_setting(''app.projector'', true) = ''on'')'
      ' WITH CHECK (current_setting(''app.projector'', true) = ''on'')', t.name, t.owner);
    EXECUTE format('GRANT SELECT ON %I TO zen_api_reader', t.name);
    secured := secured + 1;
  END LOOP;
  RETURN secured;
END
$fn$;

SELECT zen_secure_tenant_tables();
