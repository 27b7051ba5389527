import { createHash } from "node:crypto";

/**
 * Redaction of secrets and personal data from free text (receiver responses, error messages, logs)
 * and from JSON values. Pure: no IO. Every rule finds spans in the original text; overlapping spans
 * are merged so a secret matched by two rules is never half-revealed.
 */

export interface RedactOptions {
  /** Exact substrings to leave intact (e.g. our own support address or a known public IP). */
  allow?: readonly string[];
  /**
   * `redactObject` only: walk plain objects and arrays, and hand any other object (an Error, a
   * Date, a request) back untouched, for its owner to serialise. Loggers use this.
   */
  plainOnly?: boolean;
}

/** Keys whose values `redactObject` replaces entirely, whatever their type. */
export const SECRET_KEY_PATTERN = /secret|token|password|authorization|api[-_]?key/i;

/** The marker that replaces a value whose key looks secret. */
export const REDACTED = "[REDACTED]";

const marker = (kind: string): string => `[REDACTED:${kind}]`;

const IPV4_OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = `(?:${IPV4_OCTET}\\.){3}${IPV4_OCTET}`;
const H = "[0-9A-Fa-f]{1,4}";
const IPV6 = [
  `(?:${H}:){7}${H}`,
  // compressed forms need "::" and at least one group, so "::" alone or clock times never match
  `(?:${H}(?::${H}){0,6})?::(?:${H}(?::${H}){0,6})?(?::${IPV4})?`,
  `::ffff:${IPV4}`,
].join("|");

interface Rule {
  kind: string;
  /** Spans the secret; a leading named group `keep` (a key name, a host) is matched but left visible. */
  pattern: RegExp;
}

/** A key name that looks secret (`SECRET_KEY_PATTERN`) inside a longer name, as in `access_token` or `X-Api-Key`. */
const SECRET_NAME = (chars: string) => `${chars}{0,64}(?:${SECRET_KEY_PATTERN.source})${chars}{0,64}`;

// Patterns only span the secret itself; prefixes we keep ("Bearer ", "https://") sit in lookbehinds
// or, where a lookbehind would be unbounded (key names), in a leading `keep` group.
const RULES: readonly Rule[] = [
  { kind: "url-credentials", pattern: /(?<=\b[A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#@]+@/g },
  // not inside URL userinfo ("https://user:pass@host"): that rule keeps the host
  { kind: "email", pattern: /(?<![A-Za-z0-9._%+-])(?<!:\/\/[^\s/?#@]{0,256})[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  { kind: "credentials", pattern: /(?<=\b(?:Bearer|bearer|BEARER|Basic|basic|BASIC)\s+)[A-Za-z0-9._~+/-]+=*/g },
  { kind: "jwt", pattern: /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g },
  // Ten characters at least: a key's 12-character display prefix (`zk_` + 9) is shown by design.
  { kind: "api-key", pattern: /\bzk_[A-Za-z0-9_-]{10,}/g },
  { kind: "webhook-secret", pattern: /\bwhsec_[A-Za-z0-9+/=_-]+/g },
  { kind: "slack-token", pattern: /\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]+/g },
  { kind: "github-token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9_]{8,}|github_pat_[A-Za-z0-9_]{8,})/g },
  { kind: "stripe-key", pattern: /\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|rk_[A-Za-z0-9_]{8,})/g },
  { kind: "ip", pattern: new RegExp(`(?<![\\w.])${IPV4}(?!\\.?\\d)`, "g") },
  { kind: "ip", pattern: new RegExp(`(?<![\\w:.])(?:${IPV6})(?![\\w:])`, "g") },
  { kind: "aws-access-key", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { kind: "slack-webhook", pattern: /(?<keep>\bhooks\.slack\.com\/(?:services|workflows|triggers)\/)[A-Za-z0-9_/-]+/g },
  // `"access_token": "…"` in JSON text, up to the closing quote or the end (a cut-off snippet)
  { kind: "secret-field", pattern: new RegExp(`(?<keep>"${SECRET_NAME('[^"\\\\\\n]')}"\\s*:\\s*")(?:[^"\\\\]|\\\\.)+`, "gi") },
  // `password=…` in form bodies and query strings
  { kind: "secret-field", pattern: new RegExp(`(?<keep>(?<![\\w.-])${SECRET_NAME("[\\w.-]")}=)[^&\\s"'<>#;,]+`, "gi") },
  // Query parameters that carry a signature or a one-time code (`?sig=`, `X-Amz-Signature=`, an OAuth `code=`)
  { kind: "secret-field", pattern: /(?<keep>(?<![\w.-])(?:[\w.-]{0,64}signature|sig|code)=)[^&\s"'<>#;,]+/gi },
  // `X-Api-Key: …` header-like lines; an Authorization scheme stays visible like the credentials rule keeps it
  { kind: "secret-field", pattern: new RegExp(`(?<keep>^[ \\t]*${SECRET_NAME("[\\w-]")}[ \\t]*:[ \\t]*(?:(?:Bearer|Basic)[ \\t]+)?)[^\\r\\n]+`, "gim") },
];

/**
 * Something every rule above needs in its match: text without any of it cannot hold a secret, so
 * `redact` returns it at once (one scan instead of sixteen: most log strings take this path).
 */
const CANDIDATE = new RegExp(
  `@|\\d\\.\\d|:[0-9A-Fa-f]*:|bearer|basic|eyJ|zk_|whsec_|xox|xapp-|gh[pousr]_|github_pat_|[sr]k_|AKIA|ASIA|hooks\\.slack\\.com|sig|code=|${SECRET_KEY_PATTERN.source}`,
  "i",
);

interface Span {
  start: number;
  end: number;
  kind: string;
}

function occurrences(text: string, needles: readonly string[]): Span[] {
  const spans: Span[] = [];
  for (const needle of needles) {
    if (needle === "") continue;
    for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + 1)) {
      spans.push({ start: i, end: i + needle.length, kind: "allow" });
    }
  }
  return spans;
}

function findSpans(text: string, allowed: readonly Span[]): Span[] {
  const spans: Span[] = [];
  for (const { kind, pattern } of RULES) {
    for (const m of text.matchAll(pattern)) {
      const start = m.index + (m.groups?.keep?.length ?? 0);
      const end = m.index + m[0].length;
      if (end === start) continue;
      if (allowed.some((a) => a.start <= start && end <= a.end)) continue;
      spans.push({ start, end, kind });
    }
  }
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Span[] = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last && span.start < last.end) last.end = Math.max(last.end, span.end);
    else merged.push({ ...span });
  }
  return merged;
}

/** Replaces secrets, credentials, email and IP addresses in `text` with `[REDACTED:<kind>]` markers. */
export function redact(text: string, options: RedactOptions = {}): string {
  if (!CANDIDATE.test(text)) return text;
  const allowed = occurrences(text, options.allow ?? []);
  let out = "";
  let cursor = 0;
  for (const span of findSpans(text, allowed)) {
    out += text.slice(cursor, span.start) + marker(span.kind);
    cursor = span.end;
  }
  return out + text.slice(cursor);
}

/**
 * Walks a JSON value: strings go through `redact`, values under secret-looking keys become
 * `[REDACTED]` whatever they hold. Returns a new value; the input is left untouched.
 */
export function redactObject<T>(value: T, options: RedactOptions = {}): T {
  return walk(value, options, new WeakSet()) as T;
}

function walk(value: unknown, options: RedactOptions, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return redact(value, options);
  if (value === null || typeof value !== "object") return value;
  if (options.plainOnly && !isPlain(value)) return value;
  if (seen.has(value)) return REDACTED; // a cycle: not JSON, but never loop forever
  seen.add(value);
  try {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return walk(toJSON.call(value), options, seen);
    if (Array.isArray(value)) return value.map((item) => walk(item, options, seen));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = SECRET_KEY_PATTERN.test(key) ? REDACTED : walk(item, options, seen);
    }
    return out;
  } finally {
    seen.delete(value); // shared (non-cyclic) references are walked again
  }
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

const JWT_EMAIL_SUBJECT = /^(jwt:.*:)([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})$/;

/**
 * An actor id as an audit row keeps it: an operator JWT's `jwt:<iss>:<sub>` keeps its issuer, and a
 * subject that is an email becomes `[REDACTED:email:<12 hex>]`, a digest of the lower-cased address,
 * so rows still tell one operator from another (and a filter by the known id still finds them)
 * without the address in plain text. Other ids (API keys, `admin`, opaque subjects) are unchanged.
 */
export function redactActorId(id: string): string {
  const match = JWT_EMAIL_SUBJECT.exec(id);
  if (!match) return id;
  const digest = createHash("sha256").update(match[2]!.toLowerCase()).digest("hex").slice(0, 12);
  return `${match[1]}${marker(`email:${digest}`)}`;
}
