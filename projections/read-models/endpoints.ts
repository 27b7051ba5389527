import { sql, type FragmentSqlToken } from "slonik";
import { z } from "zod";
import { DeliveryPolicy, RateLimit, RetryPolicy } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import type { Queryable, Tx } from "../db.js";
import { afterCursor, clampLimit, jsonbOrNull, toPage, type KnownEnvelope, type Page, type PageRequest, type ReadModel } from "./shared.js";

export const endpointEventTypes = [
  "endpoint.registered",
  "endpoint.updated",
  "endpoint.disabled",
  "endpoint.deleted",
  "endpoint.secret_rotated",
  "endpoint.circuit_opened",
  "endpoint.circuit_half_opened",
  "endpoint.circuit_closed",
] as const;

/** An endpoint as the api returns it: no secret; absent optional fields are `null`. */
export const EndpointRow = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()),
    active: z.boolean(),
    disabledReason: z.string().nullable(),
    rateLimit: RateLimit.nullable(),
    retryPolicy: RetryPolicy.partial().nullable(),
    deliveryPolicy: DeliveryPolicy.partial().nullable(),
    metadata: z.record(z.string()).nullable(),
    circuitState: z.enum(["closed", "open", "half_open"]),
    circuitHalfOpenAt: z.string().nullable(),
    failingSince: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  // The circuit columns become EndpointOut's nested `circuit`, its unset times left out.
  .transform(({ circuitState, circuitHalfOpenAt, failingSince, ...row }) => ({
    ...row,
    circuit: {
      state: circuitState,
      ...(circuitHalfOpenAt === null ? {} : { halfOpenAt: circuitHalfOpenAt }),
      ...(failingSince === null ? {} : { failingSince }),
    },
  }));
export type EndpointRow = z.infer<typeof EndpointRow>;

const CLOSED = [sql.fragment`circuit_state = 'closed'`, sql.fragment`circuit_half_open_at = NULL`, sql.fragment`failing_since = NULL`];

/** The SET clauses of one `endpoint.updated`: only the fields it carries; `null` clears. */
function updateAssignments(data: EventData<"endpoint.updated">): FragmentSqlToken[] {
  const set: FragmentSqlToken[] = [];
  if (data.url !== undefined) set.push(sql.fragment`url = ${data.url}`);
  if (data.description !== undefined) set.push(sql.fragment`description = ${data.description}`);
  if (data.eventTypes !== undefined) set.push(sql.fragment`event_types = ${sql.array(data.eventTypes, "text")}`);
  if (data.active !== undefined) {
    set.push(sql.fragment`active = ${data.active}`);
    // Re-enabling an endpoint clears why it was disabled, and closes its circuit (as the decider does).
    if (data.active) set.push(sql.fragment`disabled_reason = NULL`, ...CLOSED);
  }
  if (data.rateLimit !== undefined) set.push(sql.fragment`rate_limit = ${jsonbOrNull(data.rateLimit)}`);
  if (data.retryPolicy !== undefined) set.push(sql.fragment`retry_policy = ${jsonbOrNull(data.retryPolicy)}`);
  if (data.deliveryPolicy !== undefined) set.push(sql.fragment`delivery_policy = ${jsonbOrNull(data.deliveryPolicy)}`);
  if (data.metadata !== undefined) set.push(sql.fragment`metadata = ${jsonbOrNull(data.metadata)}`);
  return set;
}

async function updateEndpoint(tx: Tx, envelope: KnownEnvelope, seq: number, set: FragmentSqlToken[]) {
  const all = [...set, sql.fragment`updated_at = ${envelope.occurredAt}::timestamptz`, sql.fragment`last_seq = ${seq}`];
  await tx.query(sql.unsafe`
    UPDATE endpoints SET ${sql.join(all, sql.fragment`, `)}
    WHERE id = ${envelope.aggregateId} AND tenant_id = ${envelope.tenantId} AND last_seq < ${seq}`);
}

export async function applyEndpointEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  switch (envelope.type) {
    case "endpoint.registered": {
      const d = envelope.data;
      await tx.query(sql.unsafe`
        INSERT INTO endpoints (id, tenant_id, url, description, event_types, active, rate_limit, retry_policy,
                               delivery_policy, metadata, created_at, updated_at, last_seq)
        VALUES (${envelope.aggregateId}, ${envelope.tenantId}, ${d.url}, ${d.description ?? null},
                ${sql.array(d.eventTypes, "text")}, TRUE, ${jsonbOrNull(d.rateLimit)}, ${jsonbOrNull(d.retryPolicy)},
                ${jsonbOrNull(d.deliveryPolicy)}, ${jsonbOrNull(d.metadata)},
                ${envelope.occurredAt}::timestamptz, ${envelope.occurredAt}::timestamptz, ${seq})
        ON CONFLICT (id) DO NOTHING`);
      return;
    }
    case "endpoint.updated":
      return updateEndpoint(tx, envelope, seq, updateAssignments(envelope.data));
    case "endpoint.disabled":
      return updateEndpoint(tx, envelope, seq, [sql.fragment`active = FALSE`, sql.fragment`disabled_reason = ${envelope.data.reason}`]);
    case "endpoint.deleted":
      return updateEndpoint(tx, envelope, seq, [sql.fragment`active = FALSE`, sql.fragment`deleted_at = ${envelope.occurredAt}::timestamptz`]);
    case "endpoint.secret_rotated":
      // No secret column: a rotation only moves `updated_at`.
      return updateEndpoint(tx, envelope, seq, []);
    case "endpoint.circuit_opened":
      return updateEndpoint(tx, envelope, seq, [
        sql.fragment`circuit_state = 'open'`,
        sql.fragment`circuit_half_open_at = ${envelope.data.halfOpenAt}::timestamptz`,
        sql.fragment`failing_since = ${envelope.data.failingSince}::timestamptz`,
      ]);
    case "endpoint.circuit_half_opened":
      // halfOpenAt stays: when the probes started. The failing run goes on until one succeeds.
      return updateEndpoint(tx, envelope, seq, [sql.fragment`circuit_state = 'half_open'`]);
    case "endpoint.circuit_closed":
      return updateEndpoint(tx, envelope, seq, CLOSED);
    default:
      return;
  }
}

export const endpointsReadModel: ReadModel = { name: "endpoints", handles: endpointEventTypes, apply: applyEndpointEvent };

const columns = sql.fragment`
  id, url, description, event_types AS "eventTypes", active, disabled_reason AS "disabledReason",
  rate_limit AS "rateLimit", retry_policy AS "retryPolicy", delivery_policy AS "deliveryPolicy", metadata,
  circuit_state AS "circuitState", circuit_half_open_at AS "circuitHalfOpenAt", failing_since AS "failingSince",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** The tenant's endpoints (deleted ones left out), newest first. */
export async function listEndpoints(db: Queryable, tenantId: string, page: PageRequest = {}): Promise<Page<EndpointRow>> {
  const limit = clampLimit(page.limit);
  const rows = await db.any(sql.type(EndpointRow)`
    SELECT ${columns} FROM endpoints
    WHERE tenant_id = ${tenantId} AND deleted_at IS NULL AND ${afterCursor(page.cursor, "created_at", "id")}
    ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`);
  return toPage(rows, limit, (row) => ({ at: row.createdAt, id: row.id }));
}

/** One endpoint of the tenant, or null (also when deleted or another tenant's). */
export async function getEndpoint(db: Queryable, tenantId: string, id: string): Promise<EndpointRow | null> {
  return db.maybeOne(sql.type(EndpointRow)`
    SELECT ${columns} FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${id} AND deleted_at IS NULL`);
}
