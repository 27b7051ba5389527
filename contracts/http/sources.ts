import { z } from "zod";
import { prefixedId } from "../common.js";
import { EventTypeFrom, HmacConfig, SourceScheme } from "../inbound.js";
import { Timestamp } from "./common.js";

/** Schemes whose secret the provider issues: the create body must bring it. */
export const PROVIDER_SECRET_SCHEMES: readonly SourceScheme[] = ["stripe", "slack", "shopify"];

/** A Standard Webhooks secret: `whsec_` (optional) and the base64 key. */
const STANDARD_SECRET = /^(whsec_)?[A-Za-z0-9+/]{16,}={0,2}$/;

const Name = z.string().trim().min(1).max(200).describe("Display name, e.g. `GitHub org events`");
const Secret = z
  .string()
  .min(8)
  .max(500)
  .describe("The signing secret: the provider's (required for stripe, slack, shopify), else generated when absent; never shown again");

type SourceFields = { scheme?: SourceScheme; secret?: string; hmac?: unknown };

/** Cross-field rules of a create: the `hmac` settings belong to scheme `hmac`, provider secrets are required. */
function checkSource(source: SourceFields, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
  if (source.scheme === "hmac" && source.hmac === undefined) issue("hmac", "scheme hmac needs its hmac settings");
  if (source.scheme !== "hmac" && source.hmac !== undefined) issue("hmac", "only scheme hmac takes hmac settings");
  if (source.scheme && PROVIDER_SECRET_SCHEMES.includes(source.scheme) && source.secret === undefined) {
    issue("secret", `scheme ${source.scheme} needs the secret the provider issued`);
  }
  if (source.scheme === "standard-webhooks" && source.secret !== undefined && !STANDARD_SECRET.test(source.secret)) {
    issue("secret", "must be whsec_ followed by a base64 key");
  }
}

/** `POST /v1/webhooks/sources` body. */
export const SourceIn = z
  .object({
    name: Name,
    scheme: SourceScheme,
    secret: Secret.optional(),
    hmac: HmacConfig.optional(),
    eventTypeFrom: EventTypeFrom.optional(),
  })
  .strict()
  .superRefine(checkSource)
  .describe("A new inbound source");
export type SourceIn = z.infer<typeof SourceIn>;

/** `PATCH /v1/webhooks/sources/{id}` body: the fields to change; `null` clears `eventTypeFrom`. */
export const SourcePatch = z
  .object({
    name: Name.optional(),
    secret: Secret.optional().describe("A new signing secret (e.g. after the provider rolled it); never shown back"),
    hmac: HmacConfig.optional().describe("New settings of an `hmac` source"),
    eventTypeFrom: EventTypeFrom.nullable().optional(),
  })
  .strict()
  .describe("Changes to a source (its scheme is fixed)");
export type SourcePatch = z.infer<typeof SourcePatch>;

export const SourceParams = z.object({ id: prefixedId("source") }).strict();

/** A source as every read returns it: never its secret; absent optional fields are null. */
export const SourceOut = z
  .object({
    id: prefixedId("source").describe("Source id (`src_…`)"),
    name: z.string(),
    scheme: SourceScheme,
    hmac: HmacConfig.nullable(),
    eventTypeFrom: EventTypeFrom.nullable(),
    inboundPath: z.string().describe("Where the provider POSTs: `/v1/inbound/{tenantId}/{sourceId}`"),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .describe("An inbound source");
export type SourceOut = z.infer<typeof SourceOut>;

/** The answer to a create: the source and, this once, its plaintext secret. */
export const SourceCreatedOut = SourceOut.extend({
  secret: z.string().describe("The signing secret: shown only now"),
}).describe("A created source, with its secret shown this once");
export type SourceCreatedOut = z.infer<typeof SourceCreatedOut>;

/** `POST /v1/inbound/{tenantId}/{sourceId}` path; anything malformed is simply not found. */
export const InboundParams = z.object({ tenantId: z.string().max(200), sourceId: z.string().max(200) }).strict();
