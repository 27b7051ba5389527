import type { AggregateType } from "../contracts/common.js";

/**
 * Subject and stream names. Every event of one aggregate is on one subject,
 * `<prefix>.evt.<tenantId>.<branch>.<aggregateType>.<aggregateId>`. Registry and message events
 * sit on the `cmd` branch and deliveries on the `dlv` branch, so the router reads one filter
 * subject (all nats-server 2.9 allows) in stream order without seeing delivery traffic. Parked
 * messages sit on an `ops` branch of their own, so no reactor's work filter brings them.
 */
export type Branch = "cmd" | "dlv" | "ops";

const BRANCH_OF: Record<AggregateType, Branch> = {
  tenant: "cmd",
  apikey: "cmd",
  endpoint: "cmd",
  source: "cmd",
  message: "cmd",
  delivery: "dlv",
  replay: "dlv",
  parked: "ops",
};

export interface Topology {
  prefix: string;
  /** Replicas of the stream and of every KV bucket (`ZEN_STREAM_REPLICAS`; 1 on a single server). */
  replicas: number;
  /** The one stream holding every event. */
  stream: string;
  /** Subject of one aggregate. */
  aggregateSubject: (tenantId: string, aggregateType: AggregateType, aggregateId: string) => string;
  /** Every event of every tenant. */
  allEvents: string;
  /** Every event of one tenant. */
  tenantEvents: (tenantId: string) => string;
  /** Registry and message events of every tenant, in stream order (the router's view). */
  commandBranch: string;
  /** Message events of every tenant (the router's work). */
  messageEvents: string;
  /** Delivery events of every tenant (the dispatcher's work). */
  deliveryBranch: string;
  /** Parked-message events of every tenant (each reactor's replays of what it parked). */
  parkedEvents: string;
  /** Durable consumer name for a role, e.g. `ZEN_ROUTER`. */
  consumerName: (role: string) => string;
  /** KV bucket name, e.g. `ZEN_EVENT_IDS`. */
  bucketName: (purpose: string) => string;
}

/** Lower-case letters and digits only, so two prefixes never upper-case to one stream name. */
const SAFE_PREFIX = /^[a-z][a-z0-9]{0,30}$/;

export function createTopology(prefix: string, replicas = 1): Topology {
  if (!SAFE_PREFIX.test(prefix)) {
    throw new Error(`ZEN_STREAM_PREFIX must match ${SAFE_PREFIX} (got "${prefix}")`);
  }
  const upper = prefix.toUpperCase();
  return {
    prefix,
    replicas,
    stream: `${upper}_EVENTS`,
    aggregateSubject: (tenantId, aggregateType, aggregateId) => `${prefix}.evt.${tenantId}.${BRANCH_OF[aggregateType]}.${aggregateType}.${aggregateId}`,
    allEvents: `${prefix}.evt.>`,
    tenantEvents: (tenantId) => `${prefix}.evt.${tenantId}.>`,
    commandBranch: `${prefix}.evt.*.cmd.>`,
    messageEvents: `${prefix}.evt.*.cmd.message.*`,
    deliveryBranch: `${prefix}.evt.*.dlv.>`,
    parkedEvents: `${prefix}.evt.*.ops.parked.*`,
    consumerName: (role) => `${upper}_${role.toUpperCase()}`,
    bucketName: (purpose) => `${upper}_${purpose.toUpperCase()}`,
  };
}
