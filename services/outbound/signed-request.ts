import type { EventData } from "../../contracts/events.js";
import { buildOutboundBody, signPayload } from "../../domain/signing/standard-webhooks.js";
import { VERSION } from "../shared/version.js";

const USER_AGENT = `zen-webhooks/${VERSION}`;

/**
 * What one signed request carries: a delivery's message (its `delivery.scheduled` data and the
 * payload of the message it names), or a test send's (`msg_test_…`, accepted now).
 */
export type OutboundMessage = Pick<EventData<"delivery.scheduled">, "messageId" | "eventType" | "messageReceivedAt"> & { payload: Record<string, unknown> };

/**
 * The request a receiver gets (API.md "Outbound requests"): the Standard Webhooks headers with
 * `webhook-id` = the message id (the same on every retry), and the body `{type, timestamp, data}`;
 * plus `traceparent` when the attempt is traced.
 */
export function signedRequest({
  url,
  secrets,
  scheduled,
  now,
  traceparent,
}: {
  url: string;
  secrets: string[];
  scheduled: OutboundMessage;
  now: Date;
  traceparent?: string;
}) {
  const body = buildOutboundBody({ eventType: scheduled.eventType, timestamp: scheduled.messageReceivedAt, payload: scheduled.payload });
  const timestamp = Math.floor(now.getTime() / 1000);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": USER_AGENT,
    "webhook-id": scheduled.messageId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signPayload({ msgId: scheduled.messageId, timestamp, body, secrets }),
  };
  // W3C trace context of the attempt's span, when the dispatcher traces (not covered by the signature).
  if (traceparent) headers.traceparent = traceparent;
  return { url, body, headers };
}
