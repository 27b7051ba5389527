import { z } from "zod";
import { prefixedId } from "../common.js";

/** A concrete event type: dot-separated tokens of letters, digits, `_` and `-`. */
const EventTypeName = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be dot-separated tokens of letters, digits, _ and -");

/** `POST /v1/webhooks/ingest` body. */
export const IngestIn = z
  .object({
    eventType: EventTypeName.describe("The event's type, e.g. `invoice.paid`"),
    payload: z.record(z.unknown()).describe("The event's data: a JSON object, sent to receivers as `data`"),
    eventId: z.string().min(1).max(255).optional().describe("Your own id for the event: a repeat within 24 h is refused with 409 duplicate_event"),
  })
  .strict()
  .describe("An event to deliver");
export type IngestIn = z.infer<typeof IngestIn>;

export const IngestOut = z
  .object({
    messageId: prefixedId("message").describe("The message id (`msg_…`), also the `webhook-id` receivers get"),
    status: z.literal("accepted"),
  })
  .describe("The event is durably stored and will be routed");
export type IngestOut = z.infer<typeof IngestOut>;
