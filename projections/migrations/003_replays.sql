-- DLQ replays (API.md "Replay"). A replay's row is built from its own events (replay.requested,
-- replay.completed, replay.failed); `replayed`, `succeeded` and `failed` move with the events of
-- the deliveries it replayed, which carry the replay's id in `deliveries.replay_id`.

CREATE TABLE replays (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
  -- deliveries the selection named when the replay was requested
  requested integer NOT NULL,
  -- scheduled again (delivery.replayed), and named but not dead deliveries of this tenant
  replayed integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  -- replayed deliveries that have since succeeded, or died again
  succeeded integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  reason text,
  created_at timestamptz NOT NULL,
  completed_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX replays_tenant_created ON replays (tenant_id, created_at DESC, id DESC);

-- The replay that started the delivery's current attempt series (null: never replayed).
ALTER TABLE deliveries ADD COLUMN replay_id text;
