import { z } from "zod";
import { DEFAULT_ROTATION_GRACE_SECONDS, DeliveryPolicy, MAX_ROTATION_GRACE_SECONDS, prefixedId, RateLimit, RetryPolicy } from "../common.js";
import { Timestamp } from "./common.js";

/** A secret a client brings: `whsec_` and at least 20 base64 characters. */
export const WebhookSecret = z
  .string()
  .max(200)
  .regex(/^whsec_[A-Za-z0-9+/=]{20,}$/, "must be whsec_ followed by at least 20 base64 characters")
  .describe("Signing secret (`whsec_…`); generated when absent");

const Url = z.string().min(1).max(2048).describe("Where deliveries are POSTed: an absolute http(s) URL on a public address");
const EventTypes = z.array(z.string().max(200)).max(100).describe("Event-type patterns: `*`, `prefix.*` or an exact type");
const Description = z.string().max(1000);
const Metadata = z.record(z.string().max(1000)).refine((m) => Object.keys(m).length <= 50, "at most 50 keys");
const Retry = RetryPolicy.partial().describe("Overrides of the default retry policy");
const Delivery = DeliveryPolicy.partial().describe("Overrides of the default delivery policy");

/** `POST /v1/webhooks/registry` body. */
export const EndpointIn = z
  .object({
    url: Url,
    description: Description.optional(),
    eventTypes: EventTypes,
    secret: WebhookSecret.optional(),
    rateLimit: RateLimit.optional(),
    retryPolicy: Retry.optional(),
    deliveryPolicy: Delivery.optional(),
    metadata: Metadata.optional().describe("Your own string key/values"),
  })
  .strict()
  .describe("A new endpoint");
export type EndpointIn = z.infer<typeof EndpointIn>;

/** `PATCH /v1/webhooks/registry/{id}` body: the fields to change; `null` clears an optional one. */
export const EndpointPatch = z
  .object({
    url: Url.optional(),
    description: Description.nullable().optional(),
    eventTypes: EventTypes.optional(),
    active: z.boolean().optional().describe("false disables the endpoint, true enables it again"),
    rateLimit: RateLimit.nullable().optional(),
    retryPolicy: Retry.nullable().optional(),
    deliveryPolicy: Delivery.nullable().optional(),
    metadata: Metadata.nullable().optional(),
  })
  .strict()
  .describe("Changes to an endpoint (the secret is changed by rotate-secret, not here)");
export type EndpointPatch = z.infer<typeof EndpointPatch>;

export const EndpointParams = z.object({ id: prefixedId("endpoint") }).strict();

/**
 * An endpoint's circuit breaker as the dispatchers last recorded it: `open` while deliveries to it
 * wait (they spend no attempts) until `halfOpenAt`, `half_open` while a few probe attempts go.
 */
export const CircuitOut = z
  .object({
    state: z.enum(["closed", "open", "half_open"]).describe("closed: deliveries go; open: they wait; half_open: probes go"),
    halfOpenAt: Timestamp.optional().describe("When probes may start (open), or started (half_open)"),
    failingSince: Timestamp.optional().describe(
      "The first failure of the unbroken run of failures; the endpoint is disabled when the run lasts too long (5 days by default)",
    ),
  })
  .strict()
  .describe("The endpoint's circuit breaker");
export type CircuitOut = z.infer<typeof CircuitOut>;

/** An endpoint as every read returns it: never its secret; absent optional fields are null. */
export const EndpointOut = z
  .object({
    id: prefixedId("endpoint").describe("Endpoint id (`ep_…`)"),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()),
    active: z.boolean(),
    disabledReason: z.string().nullable().describe("Why the endpoint is disabled, when it is"),
    rateLimit: RateLimit.nullable(),
    retryPolicy: RetryPolicy.partial().nullable(),
    deliveryPolicy: DeliveryPolicy.partial().nullable(),
    metadata: z.record(z.string()).nullable(),
    circuit: CircuitOut,
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .describe("An endpoint");
export type EndpointOut = z.infer<typeof EndpointOut>;

/** The answer to a create: the endpoint and, this once, its plaintext secret. */
export const EndpointCreatedOut = EndpointOut.extend({
  secret: z.string().describe("The signing secret (`whsec_…`): shown only now"),
}).describe("A created endpoint, with its secret shown this once");
export type EndpointCreatedOut = z.infer<typeof EndpointCreatedOut>;

/** `POST /v1/webhooks/registry/{id}/rotate-secret` body (may be empty). */
export const RotateSecretIn = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_ROTATION_GRACE_SECONDS)
      .default(DEFAULT_ROTATION_GRACE_SECONDS)
      .describe("How long the current secret keeps signing beside the new one: 0–604800 s (7 days), default 86400 (24 h)"),
  })
  .strict()
  .describe("A secret rotation");
export type RotateSecretIn = z.infer<typeof RotateSecretIn>;

/** The answer to a rotation: the new secret, this once. */
export const RotateSecretOut = z
  .object({
    secret: z.string().describe("The new signing secret (`whsec_…`): shown only now"),
    previousExpiresAt: Timestamp.describe("Until then the replaced secret signs too (a second `v1,` signature)"),
  })
  .describe("A rotated secret");
export type RotateSecretOut = z.infer<typeof RotateSecretOut>;
