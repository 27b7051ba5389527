import { createHash } from "node:crypto";
import type { EventTypeFrom, HmacConfig, SourceScheme } from "../../contracts/inbound.js";
import { headerOf, type InboundHeaders } from "./verify.js";

/**
 * What an accepted inbound request becomes: the message's payload, its event type and the
 * provider's delivery id (accepted once). Pure: parsing and lookups only.
 */

export interface InboundMessage {
  eventType: string;
  payload: Record<string, unknown>;
  /** The provider's id of this delivery; a second request with it is a replay. */
  deliveryId: string;
}

export interface DescribeInput {
  scheme: SourceScheme;
  hmac?: HmacConfig;
  eventTypeFrom?: EventTypeFrom;
  headers: InboundHeaders;
  body: Buffer;
  /** The signature header that verified: the delivery id of last resort. */
  signature: string;
}

const MAX_EVENT_TYPE = 200;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The payload: a JSON object body as it is; a form body (Slack commands, GitHub's form option) as its
 * fields; anything else under `body`.
 */
export const payloadOf = (body: Buffer, contentType: string | undefined): Record<string, unknown> => {
  const text = body.toString("utf8");
  if (contentType?.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : { body: parsed };
  } catch {
    return { body: text };
  }
};

/** The value at a JSON pointer (RFC 6901), or undefined. */
export const atPointer = (document: unknown, pointer: string): unknown => {
  let node = document;
  for (const token of pointer.split("/").slice(1)) {
    const key = token.replace(/~1/g, "/").replace(/~0/g, "~");
    if (!isObject(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
};

/**
 * A provider's type as a platform event type (dot-separated tokens of letters, digits, `_`, `-`):
 * Shopify's `orders/create` becomes `orders.create`; other characters become `_`.
 */
export const normaliseEventType = (raw: unknown): string | undefined => {
  if (typeof raw !== "string" && typeof raw !== "number") return undefined;
  const tokens = String(raw)
    .replace(/\//g, ".")
    .replace(/[^A-Za-z0-9_.-]/g, "_")
    .split(".")
    .filter((token) => token.length > 0);
  const type = tokens.join(".").slice(0, MAX_EVENT_TYPE).replace(/\.+$/, "");
  return type.length > 0 ? type : undefined;
};

/** Where each scheme's providers put the type, before any `eventTypeFrom` override. */
const schemeEventType = (scheme: SourceScheme, headers: InboundHeaders, payload: Record<string, unknown>): unknown => {
  switch (scheme) {
    case "github":
      return headerOf(headers, "x-github-event");
    case "shopify":
      return headerOf(headers, "x-shopify-topic");
    case "slack":
      // Events API callbacks wrap the event: its own type says more than `event_callback`.
      return atPointer(payload, "/event/type") ?? payload.type;
    case "stripe":
    case "standard-webhooks":
      return payload.type;
    case "hmac":
      return undefined;
  }
};

/** The type when nothing names one, e.g. `hmac.event`. */
export const fallbackEventType = (scheme: SourceScheme): string => `${scheme}.event`;

const hashOf = (...parts: string[]) => createHash("sha256").update(parts.join("\n")).digest("hex");

/** The provider's delivery id; without one, a digest of the signature (unique per signed request). */
const deliveryIdOf = ({ scheme, hmac, headers, signature }: DescribeInput, payload: Record<string, unknown>): string => {
  const fromProvider = (() => {
    switch (scheme) {
      case "standard-webhooks":
        return headerOf(headers, "webhook-id");
      case "github":
        return headerOf(headers, "x-github-delivery");
      case "stripe":
        return payload.id;
      case "slack":
        return payload.event_id;
      case "shopify":
        return headerOf(headers, "x-shopify-webhook-id") ?? headerOf(headers, "x-shopify-event-id");
      case "hmac":
        return hmac?.idHeader === undefined ? undefined : headerOf(headers, hmac.idHeader);
    }
  })();
  if (typeof fromProvider === "string" && fromProvider.length > 0 && fromProvider.length <= 255) return fromProvider;
  // Slack's timestamp is inside its signature's input, so timestamp and signature name one request.
  const slackTimestamp = scheme === "slack" ? (headerOf(headers, "x-slack-request-timestamp") ?? "") : "";
  return `sig_${hashOf(slackTimestamp, signature)}`;
};

/** The message an accepted request becomes. */
export const describeInbound = (input: DescribeInput): InboundMessage => {
  const payload = payloadOf(input.body, headerOf(input.headers, "content-type"));
  const from = input.eventTypeFrom;
  const raw =
    from === undefined
      ? schemeEventType(input.scheme, input.headers, payload)
      : "header" in from
        ? headerOf(input.headers, from.header)
        : atPointer(payload, from.jsonPointer);
  return {
    eventType: normaliseEventType(raw) ?? fallbackEventType(input.scheme),
    payload,
    deliveryId: deliveryIdOf(input, payload),
  };
};

/**
 * Slack's URL verification: a signed `{"type":"url_verification","challenge":…}` must be answered
 * with the challenge before Slack sends any event. It is a handshake, not an event.
 */
export const slackChallenge = (scheme: SourceScheme, payload: Record<string, unknown>): string | undefined =>
  scheme === "slack" && payload.type === "url_verification" && typeof payload.challenge === "string" ? payload.challenge : undefined;
