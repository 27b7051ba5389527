import { z } from "zod";
import { prefixedId } from "../common.js";
import { ParkReason } from "../events.js";
import { PageQuery, Timestamp } from "./common.js";

/** The roles whose reactors park messages. */
export const ParkingReactor = z.enum(["router", "dispatcher", "replayer"]);

export const ParkedParams = z.object({ parkedId: prefixedId("parked") }).strict();

/** `GET /v1/parked` query: a page, narrowed by status, reactor or tenant. */
export const ParkedQuery = PageQuery.extend({
  status: z.enum(["parked", "replaying", "replayed"]).optional().describe("parked: waiting for the operator; replaying: a replay runs; replayed: handled"),
  reactor: ParkingReactor.optional(),
  tenantId: prefixedId("tenant").optional(),
}).strict();
export type ParkedQuery = z.infer<typeof ParkedQuery>;

export const ParkedOut = z
  .object({
    id: prefixedId("parked").describe("`pkd_<reactor>-<stream sequence>`"),
    tenantId: z.string(),
    reactor: z.string().describe("The role that gave up on the message"),
    streamSeq: z.number().int().describe("Where the message is in the event stream (a replay reads it from there)"),
    subject: z.string(),
    eventType: z.string().nullable().describe("The parked message's event type, when it had one"),
    reason: ParkReason.describe(
      "handler_failed: it kept failing; handler_timeout: it kept outliving its deadline; never_finished: the processes that took it crashed or froze holding it",
    ),
    failures: z.number().int().describe("Failed handlings in a row before it was parked"),
    error: z.string().describe("The last failure, redacted"),
    status: z.enum(["parked", "replaying", "replayed"]),
    replayError: z.string().nullable().describe("Why the last replay failed, while it is parked again"),
    replays: z.number().int().describe("Replays asked for so far"),
    parkedAt: Timestamp,
    replayedAt: Timestamp.nullable(),
  })
  .describe("A stream message a reactor gave up on after its bound of failures");
export type ParkedOut = z.infer<typeof ParkedOut>;

export const ParkedReplayOut = z
  .object({ id: prefixedId("parked"), status: z.literal("replaying") })
  .describe("The replay was asked for; the reactor handles the message again shortly");
