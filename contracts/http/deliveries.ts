import { z } from "zod";
import { prefixedId } from "../common.js";
import { CandidateSet, MAX_LISTED_CANDIDATES, RoutingCandidate } from "../events.js";
import { PageQuery, Timestamp } from "./common.js";

export const DeliveryStatus = z.enum(["pending", "retrying", "succeeded", "dead"]).describe("pending → succeeded | retrying → … → succeeded | dead (in the DLQ)");

/** `?since=&until=` of the lists filtered by time. */
export const Range = {
  since: z.string().datetime({ offset: true }).optional().describe("From this time on (inclusive), ISO 8601"),
  until: z.string().datetime({ offset: true }).optional().describe("Before this time (exclusive), ISO 8601"),
};

/** `GET /v1/webhooks/deliveries` query. */
export const DeliveryQuery = PageQuery.extend({
  status: DeliveryStatus.optional(),
  endpointId: prefixedId("endpoint").optional(),
  eventType: z.string().max(200).optional(),
  messageId: prefixedId("message").optional(),
  ...Range,
}).strict();
export type DeliveryQuery = z.infer<typeof DeliveryQuery>;

/** `GET /v1/webhooks/dlq` query. */
export const DlqQuery = PageQuery.extend({
  endpointId: prefixedId("endpoint").optional(),
  eventType: z.string().max(200).optional(),
  ...Range,
}).strict();
export type DlqQuery = z.infer<typeof DlqQuery>;

export const DeliveryParams = z.object({ id: prefixedId("delivery") }).strict();

const deliveryFields = {
  id: z.string().describe("Delivery id (`dlv_…`)"),
  messageId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  status: DeliveryStatus,
  lastStatusCode: z.number().int().nullable(),
  lastErrorClass: z.string().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: Timestamp.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  succeededAt: Timestamp.nullable(),
  deadAt: Timestamp.nullable(),
  deadReason: z.string().nullable(),
};

/** A delivery as listed: one message to one endpoint. */
export const DeliveryOut = z.object({ ...deliveryFields, attempts: z.number().int().describe("Attempts so far") }).describe("A delivery");
export type DeliveryOut = z.infer<typeof DeliveryOut>;

export const AttemptOut = z
  .object({
    attempt: z.number().int(),
    startedAt: Timestamp,
    latencyMs: z.number().int(),
    statusCode: z.number().int().nullable(),
    errorClass: z.string(),
    error: z.string().nullable(),
    responseSnippet: z.string().nullable().describe("The start of the receiver's answer, redacted"),
    outcome: z.enum(["succeeded", "retry", "dead"]).nullable().describe("What followed; null while undecided"),
  })
  .describe("One delivery attempt");

export const RoutingOut = z
  .object({
    strategy: z.string(),
    registrySeq: z.number().int().describe("The registry was read as of this stream sequence"),
    candidates: z
      .array(RoutingCandidate)
      .describe(`The endpoints considered, sorted by id: the first ${MAX_LISTED_CANDIDATES} of \`candidateSet\` (every one for a decision without \`candidateSet\`)`),
    candidateSet: CandidateSet.optional().describe(
      "The whole candidate set: `count`, `matched` (the targets) and `digest`: `sha256:` and the hex sha256 of the JSON array " +
        "`[[endpointId, matched, reason], …]` of every candidate sorted by endpoint id, without whitespace, to re-derive from the " +
        "registry as of `registrySeq`. Absent on a decision projected before `routing.decided` version 2, whose `candidates` is the whole set",
    ),
    targets: z.array(z.object({ endpointId: z.string(), deliveryId: z.string() })).describe("Every matched endpoint with its delivery"),
    decidedAt: Timestamp,
  })
  .describe("The routing decision that created the delivery");

/** A delivery with its attempt history and the routing decision that created it. */
export const DeliveryDetailOut = z
  .object({
    ...deliveryFields,
    attemptCount: z.number().int(),
    attempts: z.array(AttemptOut),
    routing: RoutingOut.nullable(),
  })
  .describe("A delivery with its attempts");
export type DeliveryDetailOut = z.infer<typeof DeliveryDetailOut>;

/** A dead-lettered delivery. */
export const DlqEntryOut = z
  .object({
    deliveryId: prefixedId("delivery"),
    messageId: z.string(),
    endpointId: z.string(),
    eventType: z.string(),
    errorClass: z.string(),
    reason: z.string(),
    attempts: z.number().int(),
    deadAt: Timestamp,
  })
  .describe("A dead-lettered delivery");
export type DlqEntryOut = z.infer<typeof DlqEntryOut>;
