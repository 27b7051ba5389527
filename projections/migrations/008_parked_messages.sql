-- Parked messages (issue 12): stream messages a reactor gave up on after its bound of failures,
-- built from the `parked` aggregate's events. The operator lists them and asks for replays; the
-- message itself stays in the stream, where the replay reads it by `stream_seq`.

CREATE TABLE parked_messages (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  reactor text NOT NULL,
  stream_seq bigint NOT NULL,
  subject text NOT NULL,
  event_type text,
  reason text NOT NULL,
  failures integer NOT NULL,
  error text NOT NULL,
  status text NOT NULL CHECK (status IN ('parked', 'replaying', 'replayed')),
  -- the last replay's failure, while the message is parked again after it
  replay_error text,
  replays integer NOT NULL DEFAULT 0,
  parked_at timestamptz NOT NULL,
  replayed_at timestamptz,
  last_seq bigint NOT NULL
);
CREATE INDEX parked_messages_parked_at ON parked_messages (parked_at DESC, id DESC);
