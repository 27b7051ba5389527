import { randomBytes } from "node:crypto";
import type { AggregateType } from "../../contracts/common.js";
import type { Envelope } from "../../contracts/envelope.js";
import { schemaVersionOf, type EventData, type EventType, type RoutingDecidedV1 } from "../../contracts/events.js";

/** Builds valid envelopes for one tenant, at their type's current schema version; each event 1 s after the previous unless `at` is given. */
export function envelopes(tenantId: string, start = Date.parse("2025-01-01T00:00:00.000Z")) {
  let n = 0;
  return function event<T extends EventType>(aggregateType: AggregateType, aggregateId: string, type: T, data: EventData<T>, at?: string): Envelope {
    n += 1;
    return {
      id: `evt_${tenantId}_${n}_${randomBytes(3).toString("hex")}`,
      type,
      schemaVersion: schemaVersionOf(type),
      tenantId,
      aggregateType,
      aggregateId,
      occurredAt: at ?? new Date(start + n * 1000).toISOString(),
      correlationId: `req_${n}`,
      causationId: null,
      actor: { kind: "operator", id: "admin" },
      data,
      prevHash: null,
      hash: `hash_${n}`,
    };
  };
}

/** An envelope as its type's version 1 wrote it (`data` in that version's shape), as streams written before later versions hold. */
export const asVersion1 = (envelope: Envelope): Envelope => ({ ...envelope, schemaVersion: 1 });

/** A version-1 `routing.decided` (every candidate listed, no `candidateSet`), as streams written before version 2 hold. */
export const routingDecidedV1 = (event: ReturnType<typeof envelopes>, messageId: string, data: RoutingDecidedV1, at?: string): Envelope => ({
  ...event("message", messageId, "routing.decided", data as never, at),
  schemaVersion: 1,
});
