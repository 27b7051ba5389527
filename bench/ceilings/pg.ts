import pg from "pg";
import { serve } from "../lib/rpc.js";

/**
 * ceiling.pg: batched inserts of 1 KiB jsonb rows on one connection, one transaction per batch
 * (the projector's shape: one connection, one transaction per batch of `batch` events).
 */
let next = 1;

async function run({ databaseUrl, durationS, batch = 500 }: { databaseUrl: string; durationS: number; batch?: number }) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query(
    "CREATE TABLE IF NOT EXISTS ceiling_rows (id bigint PRIMARY KEY, tenant_id text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
  );
  const payload = JSON.stringify({ eventType: "ceiling.pg", pad: "x".repeat(1024 - 50) });
  const tenants = Array.from({ length: batch }, () => "ten_ceiling");
  const payloads = Array.from({ length: batch }, () => payload);
  let rows = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  while (performance.now() < deadline) {
    const ids = Array.from({ length: batch }, () => next++);
    await client.query("BEGIN");
    await client.query("INSERT INTO ceiling_rows (id, tenant_id, payload) SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[])", [ids, tenants, payloads]);
    await client.query("COMMIT");
    rows += batch;
  }
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  return { rows, seconds, rate: rows / seconds, batch };
}

serve({ run });
