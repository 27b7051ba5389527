/**
 * Event-type patterns an endpoint subscribes with (API.md "Event-type patterns"): `*` matches every
 * type, `prefix.*` every type under `prefix.` (at any depth), anything else exactly one type.
 */

/** A concrete event type: dot-separated tokens of letters, digits, `_` and `-`. */
export const EVENT_TYPE_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** The longest pattern accepted. */
export const MAX_PATTERN_LENGTH = 200;

const WILDCARD = "*";
const PREFIX_SUFFIX = ".*";

/** True when `p` is `*`, `<type>.*`, or an exact event type, at most {@link MAX_PATTERN_LENGTH} chars. */
export const isValidEventTypePattern = (p: string): boolean => {
  if (p.length === 0 || p.length > MAX_PATTERN_LENGTH) return false;
  if (p === WILDCARD) return true;
  if (p.endsWith(PREFIX_SUFFIX)) return EVENT_TYPE_RE.test(p.slice(0, -PREFIX_SUFFIX.length));
  return EVENT_TYPE_RE.test(p);
};

/**
 * True when `pattern` selects `eventType`. `invoice.*` matches `invoice.paid` and `invoice.paid.v2`
 * but not `invoice` itself: the wildcard stands for at least one more token.
 */
export const matchesEventType = (pattern: string, eventType: string): boolean => {
  if (pattern === WILDCARD) return true;
  if (pattern.endsWith(PREFIX_SUFFIX)) {
    const prefix = pattern.slice(0, -1); // keep the dot: "invoice."
    return eventType.startsWith(prefix) && eventType.length > prefix.length;
  }
  return pattern === eventType;
};

/** Whether any pattern matches, and why, in words fit for a routing decision. */
export interface MatchDescription {
  matched: boolean;
  reason: string;
}

/** The first pattern (in the endpoint's order) that matches `eventType`, described for humans. */
export const describeMatch = (patterns: readonly string[], eventType: string): MatchDescription => {
  const hit = patterns.find((p) => matchesEventType(p, eventType));
  return hit === undefined
    ? { matched: false, reason: `no pattern matches ${JSON.stringify(eventType)}` }
    : { matched: true, reason: `pattern ${JSON.stringify(hit)} matches` };
};
