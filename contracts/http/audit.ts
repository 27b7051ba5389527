import { z } from "zod";
import { Actor } from "../common.js";
import { PageQuery, Timestamp } from "./common.js";
import { Range } from "./deliveries.js";

/** `GET /v1/audit` query: a page of the tenant's audit log, newest first, filtered. */
export const AuditQuery = PageQuery.extend({
  action: z.string().max(100).optional().describe("Only this action (an event type, e.g. `endpoint.secret_rotated`)"),
  actorId: z.string().max(200).optional().describe("Only what this actor did (an API key id, or the operator)"),
  aggregateId: z.string().max(200).optional().describe("Only changes of this resource (e.g. an endpoint id)"),
  requestId: z.string().max(200).optional().describe("Only what this request (its X-Request-Id) caused"),
  ...Range,
}).strict();
export type AuditQuery = z.infer<typeof AuditQuery>;

/** One audited change: who did what to which resource, when, by which request. */
export const AuditEntryOut = z
  .object({
    id: z.string().describe("The id of the event the entry records"),
    occurredAt: Timestamp,
    actor: Actor.describe("Who: the operator, an API key, or the platform itself (`system`)"),
    action: z.string().describe("What: the event type, e.g. `endpoint.updated`"),
    aggregateType: z.string().describe("The kind of resource: tenant, apikey, endpoint, replay, …"),
    aggregateId: z.string(),
    requestId: z.string().describe("The X-Request-Id of the call that caused it"),
    changes: z.record(z.unknown()).describe("What changed; never a secret, and redacted (emails, tokens, IP addresses)"),
  })
  .describe("An audit log entry");
export type AuditEntryOut = z.infer<typeof AuditEntryOut>;
