-- The circuit breaker of each endpoint (issue 4, item 2), projected from endpoint.circuit_opened,
-- endpoint.circuit_half_opened and endpoint.circuit_closed; re-enabling an endpoint (endpoint.updated
-- with active = true) closes it. `failing_since` is the first failure of the unbroken run that opened
-- the circuit: the endpoint is disabled when that run lasts longer than ZEN_ENDPOINT_DISABLE_AFTER_MS.

ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS circuit_state text NOT NULL DEFAULT 'closed'
  CHECK (circuit_state IN ('closed', 'open', 'half_open'));
ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS circuit_half_open_at timestamptz;
ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS failing_since timestamptz;
