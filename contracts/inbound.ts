import { z } from "zod";

/**
 * Inbound sources (API.md "Inbound sources"): how a provider signs the webhooks it sends us. The
 * shapes here are shared by the source events and the HTTP contract of `/v1/webhooks/sources`.
 */

/** The signing schemes a source can verify. */
export const SourceScheme = z
  .enum(["standard-webhooks", "github", "stripe", "slack", "shopify", "hmac"])
  .describe(
    "standard-webhooks: webhook-id/-timestamp/-signature; github: X-Hub-Signature-256; stripe: Stripe-Signature; " +
      "slack: X-Slack-Signature v0 with X-Slack-Request-Timestamp; shopify: X-Shopify-Hmac-Sha256; hmac: configured by `hmac`",
  );
export type SourceScheme = z.infer<typeof SourceScheme>;

/** An HTTP header name (a token), compared case-insensitively. */
export const HeaderName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, "must be an HTTP header name");

/** A JSON pointer (RFC 6901), e.g. `/type` or `/event/type`. */
export const JsonPointer = z
  .string()
  .max(200)
  .regex(/^(\/[^/]*)+$/, "must be a JSON pointer such as /type");

/** Where an accepted request's event type comes from, overriding the scheme's own place. */
export const EventTypeFrom = z
  .union([
    z.object({ header: HeaderName.describe("A request header holding the type") }).strict(),
    z.object({ jsonPointer: JsonPointer.describe("A JSON pointer into the body, e.g. `/type`") }).strict(),
  ])
  .describe("Where the event type is read: a header or a JSON pointer into the body");
export type EventTypeFrom = z.infer<typeof EventTypeFrom>;

/** The placeholders a generic `hmac` source's `signedContent` may use. */
export const SIGNED_CONTENT_PLACEHOLDERS = ["{body}", "{timestamp}", "{id}"] as const;

/** A generic HMAC scheme: what is signed, how, and where the signature travels. */
export const HmacConfig = z
  .object({
    algorithm: z.enum(["sha256", "sha512"]),
    header: HeaderName.describe("The header carrying the signature, e.g. `X-Signature`"),
    encoding: z.enum(["hex", "base64"]).describe("How the signature bytes are written"),
    prefix: z.string().max(50).optional().describe("Text before the signature in the header, e.g. `sha256=`"),
    timestampHeader: HeaderName.optional().describe("A header with the unix-seconds time of signing; checked against the tolerance"),
    toleranceSeconds: z.number().int().min(1).max(86_400).optional().describe("How far the timestamp may be from now, either way (default 300)"),
    idHeader: HeaderName.optional().describe("A header with the sender's delivery id, accepted once (default: the signature itself)"),
    signedContent: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("What is signed: a template over `{body}` (the raw bytes), `{timestamp}` and `{id}`, e.g. `{timestamp}.{body}` (default `{body}`)"),
  })
  .strict()
  .describe("The generic HMAC scheme's settings");
export type HmacConfig = z.infer<typeof HmacConfig>;

/** Why an inbound request was refused; recorded on `signature.rejected`. */
export const SignatureRejectionReason = z.enum([
  "missing_signature",
  "malformed_signature",
  "signature_mismatch",
  "missing_timestamp",
  "stale_timestamp",
  "future_timestamp",
  "replayed",
  "weak_secret",
]);
export type SignatureRejectionReason = z.infer<typeof SignatureRejectionReason>;
