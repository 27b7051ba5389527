import { z } from "zod";
import { Actor, ID_PREFIX, type AggregateType } from "./common.js";
import type { EventType } from "./events.js";

/**
 * The envelope every event travels in: one JetStream message whose JSON body is this object,
 * so an auditor with any NATS client can read the log. `hash` is sha256 over the canonical JSON
 * of every other field, and `prevHash` is the hash of the aggregate's previous event (null for the
 * first): replaying an aggregate's subject recomputes the chain and detects any edit.
 */
export const Envelope = z
  .object({
    id: z.string().describe("Deterministic event id, also the Nats-Msg-Id"),
    type: z.string(),
    schemaVersion: z.number().int().min(1),
    tenantId: z.string(),
    aggregateType: z.enum(Object.keys(ID_PREFIX) as [AggregateType, ...AggregateType[]]),
    aggregateId: z.string(),
    occurredAt: z.string(),
    correlationId: z.string(),
    causationId: z.string().nullable(),
    actor: Actor,
    data: z.unknown(),
    prevHash: z.string().nullable(),
    hash: z.string(),
  })
  .strict();
export type Envelope = z.infer<typeof Envelope>;

/** An envelope whose `type` and `data` are known to match one event schema. */
export type TypedEnvelope<D = unknown, T extends string = EventType> = Omit<Envelope, "type" | "data"> & { type: T; data: D };

/** Message headers every event carries, so consumers can filter without parsing the body. */
export const EVENT_HEADERS = {
  type: "Zen-Event-Type",
  tenant: "Zen-Tenant-Id",
  aggregateType: "Zen-Aggregate-Type",
  aggregateId: "Zen-Aggregate-Id",
  correlation: "Zen-Correlation-Id",
  traceparent: "traceparent",
} as const;
