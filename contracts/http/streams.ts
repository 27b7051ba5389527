import { z } from "zod";
import { ID_PREFIX } from "../common.js";

/** Any aggregate's id: its type is read off the prefix (`ep_…`, `dlv_…`). */
const AggregateId = z.string().regex(new RegExp(`^(${Object.values(ID_PREFIX).join("|")})[A-Za-z0-9_-]{1,100}$`), "must be an aggregate id such as ep_… or dlv_…");

/** `GET /v1/streams/events` query: a page of the tenant's immutable events in stream order. */
export const StreamEventsQuery = z
  .object({
    afterSeq: z.coerce.number().int().min(0).optional().describe("Events after this stream sequence: the `seq` of the last line of the previous page"),
    since: z.string().datetime({ offset: true }).optional().describe("Events stored at or after this time, ISO 8601"),
    until: z.string().datetime({ offset: true }).optional().describe("Events stored at or before this time, ISO 8601"),
    aggregate: AggregateId.optional().describe("One aggregate's events only, by its id"),
    limit: z.coerce.number().int().min(1).max(10_000).default(1_000).describe("Events per page (1–10,000, default 1,000)"),
  })
  .strict();
export type StreamEventsQuery = z.infer<typeof StreamEventsQuery>;

/**
 * One NDJSON line of `GET /v1/streams/events`: the stream sequence and the envelope exactly as stored,
 * so an auditor recomputes its hash chain (`contracts/envelope.ts`).
 */
export const StreamEventLine = z
  .object({ seq: z.number().int(), event: z.record(z.unknown()).describe("The event's envelope, byte for byte as stored") })
  .describe("One line of the NDJSON body");

/** `GET /v1/webhooks/events` headers: `Last-Event-ID` (a stream sequence) resumes after that event. */
export const EventFeedHeaders = z
  .object({ "last-event-id": z.coerce.number().int().min(0).optional().describe("Resume after this event (the `id:` of the last event received)") })
  .passthrough();
