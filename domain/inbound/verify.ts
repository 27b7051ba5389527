import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { HmacConfig, SignatureRejectionReason, SourceScheme } from "../../contracts/inbound.js";
import { isStrongSecret } from "../signing/secret-strength.js";
import { secretKey } from "../signing/standard-webhooks.js";

/**
 * Signature verification of inbound webhooks, one function per scheme. Pure: the clock arrives as
 * `nowSeconds`; HMACs are computed over the exact raw bytes and compared in constant time.
 */

/** How far a signed timestamp may be from now, either way, unless a source says otherwise. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Request headers as Node exposes them: lower-cased names. */
export type InboundHeaders = Record<string, string | string[] | undefined>;

export interface InboundRequest {
  headers: InboundHeaders;
  /** The exact bytes received. */
  body: Buffer;
  /** Unix seconds at receipt. */
  nowSeconds: number;
}

export interface VerifyInput {
  scheme: SourceScheme;
  hmac?: HmacConfig;
  /** The plaintext signing secret. */
  secret: string;
  request: InboundRequest;
}

/**
 * Accepted: `signature` is the header value that verified (the last-resort delivery id); `digest`
 * (`sig_<hex>`) names the verified MAC bytes under this scheme, however the header wrote them (hex
 * case, extra candidates), so a signature can be accepted once even where the delivery id is unsigned.
 */
export type Verification = { ok: true; signature: string; digest: string } | { ok: false; reason: SignatureRejectionReason };

/** A scheme's verdict: on success, the MAC that matched. */
type Checked = { ok: true; signature: string; mac: Buffer } | { ok: false; reason: SignatureRejectionReason };

const reject = (reason: SignatureRejectionReason): Checked => ({ ok: false, reason });

/** A header's value (the first, when sent several times), or undefined when absent or empty. */
export const headerOf = (headers: InboundHeaders, name: string): string | undefined => {
  const value = headers[name.toLowerCase()];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === "" ? undefined : first;
};

const HEX = /^(?:[0-9a-f]{2})+$/i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The signature bytes, or undefined when the text is not valid in its encoding. */
export const decodeSignature = (text: string, encoding: "hex" | "base64"): Buffer | undefined => {
  const trimmed = text.trim();
  if (encoding === "hex") return HEX.test(trimmed) ? Buffer.from(trimmed, "hex") : undefined;
  return BASE64.test(trimmed) && trimmed.length % 4 === 0 ? Buffer.from(trimmed, "base64") : undefined;
};

/**
 * Whether any candidate equals `expected`, in constant time for candidates of the expected length.
 * Every candidate is compared (no early exit), so timing says nothing of which one matched.
 */
export const anyEqual = (expected: Buffer, candidates: readonly Buffer[]): boolean => {
  let matched = false;
  for (const candidate of candidates) {
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
  }
  return matched;
};

/** Checks a unix-seconds timestamp against now, refusing stale and future ones alike. */
export const checkTimestamp = (raw: string | undefined, nowSeconds: number, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): SignatureRejectionReason | undefined => {
  if (raw === undefined) return "missing_timestamp";
  if (!/^\d{1,12}$/.test(raw.trim())) return "malformed_signature";
  const skew = nowSeconds - Number(raw.trim());
  if (skew > toleranceSeconds) return "stale_timestamp";
  if (-skew > toleranceSeconds) return "future_timestamp";
  return undefined;
};

const hmacOf = (algorithm: "sha256" | "sha512", key: Buffer | string, parts: ReadonlyArray<string | Buffer>): Buffer => {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

/** Compares `expected` with the decoded candidates; undecodable candidates make it malformed. */
const compare = (expected: Buffer, encoded: readonly string[], encoding: "hex" | "base64", signature: string): Checked => {
  const decoded = encoded.map((text) => decodeSignature(text, encoding));
  const valid = decoded.filter((bytes): bytes is Buffer => bytes !== undefined);
  if (valid.length === 0) return reject("malformed_signature");
  return anyEqual(expected, valid) ? { ok: true, signature, mac: expected } : reject("signature_mismatch");
};

/** Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, space-separated, keyed by the whsec_ key. */
function standardWebhooks({ secret, request }: VerifyInput): Checked {
  const { headers, body, nowSeconds } = request;
  const id = headerOf(headers, "webhook-id");
  const signature = headerOf(headers, "webhook-signature");
  if (id === undefined || signature === undefined) return reject("missing_signature");
  const timestamp = headerOf(headers, "webhook-timestamp");
  const stale = checkTimestamp(timestamp, nowSeconds);
  if (stale) return reject(stale);
  const v1 = signature.split(" ").flatMap((part) => (part.startsWith("v1,") ? [part.slice(3)] : []));
  if (v1.length === 0) return reject("malformed_signature");
  const expected = hmacOf("sha256", secretKey(secret), [`${id}.${timestamp!.trim()}.`, body]);
  return compare(expected, v1, "base64", signature);
}

/** GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. No timestamp. */
function github({ secret, request }: VerifyInput): Checked {
  const signature = headerOf(request.headers, "x-hub-signature-256");
  if (signature === undefined) return reject("missing_signature");
  if (!signature.startsWith("sha256=")) return reject("malformed_signature");
  return compare(hmacOf("sha256", secret, [request.body]), [signature.slice(7)], "hex", signature);
}

/** Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">[,v1=…]`, 300 s tolerance. */
function stripe({ secret, request }: VerifyInput): Checked {
  const signature = headerOf(request.headers, "stripe-signature");
  if (signature === undefined) return reject("missing_signature");
  const pairs = signature.split(",").map((pair) => pair.split("=", 2).map((s) => s.trim()) as [string, string | undefined]);
  const timestamp = pairs.find(([key]) => key === "t")?.[1];
  const v1 = pairs.flatMap(([key, value]) => (key === "v1" && value ? [value] : []));
  const stale = checkTimestamp(timestamp, request.nowSeconds);
  if (stale) return reject(stale);
  if (v1.length === 0) return reject("missing_signature");
  return compare(hmacOf("sha256", secret, [`${timestamp!.trim()}.`, request.body]), v1, "hex", signature);
}

/** Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">` with `X-Slack-Request-Timestamp`. */
function slack({ secret, request }: VerifyInput): Checked {
  const signature = headerOf(request.headers, "x-slack-signature");
  if (signature === undefined) return reject("missing_signature");
  const timestamp = headerOf(request.headers, "x-slack-request-timestamp");
  const stale = checkTimestamp(timestamp, request.nowSeconds);
  if (stale) return reject(stale);
  if (!signature.startsWith("v0=")) return reject("malformed_signature");
  return compare(hmacOf("sha256", secret, [`v0:${timestamp!.trim()}:`, request.body]), [signature.slice(3)], "hex", signature);
}

/** Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`. No timestamp. */
function shopify({ secret, request }: VerifyInput): Checked {
  const signature = headerOf(request.headers, "x-shopify-hmac-sha256");
  if (signature === undefined) return reject("missing_signature");
  return compare(hmacOf("sha256", secret, [request.body]), [signature], "base64", signature);
}

/** The signed bytes of a generic template: `{body}` is the raw body, `{timestamp}` and `{id}` header values. */
export const signedParts = (template: string, body: Buffer, values: { timestamp?: string; id?: string }): Array<string | Buffer> =>
  template
    .split(/(\{body\}|\{timestamp\}|\{id\})/)
    .filter((part) => part !== "")
    .map((part) => (part === "{body}" ? body : part === "{timestamp}" ? (values.timestamp ?? "") : part === "{id}" ? (values.id ?? "") : part));

/** The generic scheme: the source's `hmac` settings say what is signed and where the signature is. */
function hmac({ secret, request, hmac: config }: VerifyInput): Checked {
  if (!config) return reject("malformed_signature");
  const { headers, body, nowSeconds } = request;
  const signature = headerOf(headers, config.header);
  if (signature === undefined) return reject("missing_signature");
  const prefix = config.prefix ?? "";
  if (!signature.startsWith(prefix)) return reject("malformed_signature");
  const timestamp = config.timestampHeader === undefined ? undefined : headerOf(headers, config.timestampHeader);
  if (config.timestampHeader !== undefined) {
    const stale = checkTimestamp(timestamp, nowSeconds, config.toleranceSeconds);
    if (stale) return reject(stale);
  }
  const id = config.idHeader === undefined ? undefined : headerOf(headers, config.idHeader);
  if (config.signedContent?.includes("{id}") && id === undefined) return reject("missing_signature");
  const parts = signedParts(config.signedContent ?? "{body}", body, { timestamp: timestamp?.trim(), id });
  return compare(hmacOf(config.algorithm, secret, parts), [signature.slice(prefix.length)], config.encoding, signature);
}

const VERIFIERS: Record<SourceScheme, (input: VerifyInput) => Checked> = {
  "standard-webhooks": standardWebhooks,
  github,
  stripe,
  slack,
  shopify,
  hmac,
};

/**
 * Verifies one inbound request under its source's scheme. A secret too weak to trust (kept from
 * before the deciders refused them: an empty key anyone can sign with) verifies nothing until it is
 * rotated.
 */
export const verifyInbound = (input: VerifyInput): Verification => {
  if (!isStrongSecret(input.scheme, input.secret)) return { ok: false, reason: "weak_secret" };
  const checked = VERIFIERS[input.scheme](input);
  if (!checked.ok) return checked;
  const digest = createHash("sha256").update(`${input.scheme}\n`).update(checked.mac).digest("hex");
  return { ok: true, signature: checked.signature, digest: `sig_${digest}` };
};
