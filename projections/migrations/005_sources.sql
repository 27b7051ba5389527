-- Inbound sources (issue 5, part 4), projected from source.created, source.updated and
-- source.deleted. No secret column: a source's secret lives only (encrypted) in the event log,
-- which is where the inbound route reads it (through the registry view), never from here.

CREATE TABLE IF NOT EXISTS sources (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  name text NOT NULL,
  scheme text NOT NULL,
  hmac jsonb,
  event_type_from jsonb,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_tenant_created ON sources (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
