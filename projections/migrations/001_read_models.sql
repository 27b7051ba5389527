-- Read models built by the projector from the event stream. Every row can be rebuilt by replaying
-- the stream: `rebuildReadModels` truncates these tables and resets the checkpoint.
-- `last_seq` on a row is the stream sequence of the last event applied to it: an event at or
-- below it changes nothing, so applying any event twice leaves identical rows.

CREATE TABLE projection_checkpoints (
  projection text PRIMARY KEY,
  last_seq bigint NOT NULL
);

CREATE TABLE tenants (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL,
  last_seq bigint NOT NULL
);

-- Never the key hash: only its display prefix.
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  name text NOT NULL,
  scopes text[] NOT NULL,
  key_prefix text NOT NULL,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at DESC, id DESC);

-- No secret column: secrets live only (encrypted) in the event log.
CREATE TABLE endpoints (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  url text NOT NULL,
  description text,
  event_types text[] NOT NULL,
  active boolean NOT NULL,
  disabled_reason text,
  rate_limit jsonb,
  retry_policy jsonb,
  delivery_policy jsonb,
  metadata jsonb,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX endpoints_tenant_created ON endpoints (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE messages (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  event_type text NOT NULL,
  event_id text,
  payload jsonb NOT NULL,
  received_at timestamptz NOT NULL,
  stream_seq bigint NOT NULL,
  routing jsonb,
  routed_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX messages_tenant_received ON messages (tenant_id, received_at DESC, id DESC);

CREATE TABLE deliveries (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  message_id text NOT NULL,
  endpoint_id text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'retrying', 'succeeded', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error_class text,
  last_error text,
  next_attempt_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  succeeded_at timestamptz,
  dead_at timestamptz,
  dead_reason text,
  last_seq bigint NOT NULL
);
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_tenant_status ON deliveries (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX deliveries_tenant_endpoint ON deliveries (tenant_id, endpoint_id, created_at DESC, id DESC);
CREATE INDEX deliveries_message ON deliveries (message_id);

CREATE TABLE delivery_attempts (
  delivery_id text NOT NULL,
  attempt integer NOT NULL,
  tenant_id text NOT NULL,
  started_at timestamptz NOT NULL,
  latency_ms integer NOT NULL,
  status_code integer,
  error_class text NOT NULL,
  error text,
  response_snippet text,
  -- null until the outcome event: 'succeeded' | 'retry' | 'dead'
  outcome text,
  PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE dlq_entries (
  delivery_id text PRIMARY KEY,
  tenant_id text NOT NULL,
  message_id text NOT NULL,
  endpoint_id text NOT NULL,
  event_type text NOT NULL,
  error_class text NOT NULL,
  reason text NOT NULL,
  attempts integer NOT NULL,
  dead_at timestamptz NOT NULL
);
CREATE INDEX dlq_entries_tenant_dead ON dlq_entries (tenant_id, dead_at DESC, delivery_id DESC);
CREATE INDEX dlq_entries_tenant_endpoint ON dlq_entries (tenant_id, endpoint_id, dead_at DESC, delivery_id DESC);

CREATE TABLE audit_log (
  event_id text PRIMARY KEY,
  tenant_id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  actor_kind text NOT NULL,
  actor_id text NOT NULL,
  action text NOT NULL,
  aggregate_type text NOT NULL,
  aggregate_id text NOT NULL,
  request_id text NOT NULL,
  changes jsonb NOT NULL
);
CREATE INDEX audit_log_tenant_occurred ON audit_log (tenant_id, occurred_at DESC, event_id DESC);
