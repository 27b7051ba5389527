import { classifyAddress, inCidrs, parseAddress, parseCidr } from "./address.js";

/** How strict the SSRF guard is (`ZEN_ALLOW_PRIVATE_TARGETS`, `ZEN_ALLOWED_TARGET_CIDRS`). */
export interface TargetPolicy {
  /** True turns the guard off: any address may be dialled (development and tests only). */
  allowPrivate?: boolean;
  /** Ranges allowed although not global, e.g. `127.0.0.0/8` for a local receiver; bare addresses count as /32 or /128. */
  allowedCidrs?: readonly string[];
}

/** The verdict on one target. `reason` is safe to store and show: it names a range, never the address. */
export type TargetVerdict = { allowed: true } | { allowed: false; range: string; reason: string };

/** A compiled policy: the same rules for registration (literal hosts) and for the address dialled. */
export interface TargetRules {
  /** False when the policy lets everything through (`allowPrivate`). */
  readonly guarded: boolean;
  /** The verdict on an IP address as resolved or dialled; anything that is not an IP is refused. */
  checkAddress(ip: string): TargetVerdict;
  /**
   * The verdict on a URL's host as far as it can be judged without DNS: an IP literal or a
   * `localhost` name. `undefined` for any other name: only the connect-time guard can judge it.
   */
  checkHost(hostname: string): TargetVerdict | undefined;
}

const ALLOWED: TargetVerdict = { allowed: true };
/** What `localhost` names are judged as: RFC 6761 reserves them for loopback. */
const LOCALHOST_AS = "127.0.0.1";

const refused = (range: string): TargetVerdict => ({
  allowed: false,
  range,
  reason: `target address is in a non-global range (${range})`,
});

/** `localhost`, `*.localhost` (RFC 6761) and `localhost.localdomain`, with or without the root dot. */
export function isLocalName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name === "localhost.localdomain";
}

/** Validates and compiles a policy; throws a RangeError naming the first invalid CIDR. */
export function compileTargetPolicy(policy: TargetPolicy = {}): TargetRules {
  const cidrs = (policy.allowedCidrs ?? []).map((cidr) => parseCidr(cidr.trim()));
  if (policy.allowPrivate) return { guarded: false, checkAddress: () => ALLOWED, checkHost: () => ALLOWED };

  function checkAddress(ip: string): TargetVerdict {
    const parsed = parseAddress(ip);
    const verdict = classifyAddress(ip);
    if (!parsed || !verdict) return refused("not an IP address");
    if (verdict.global || inCidrs(parsed, cidrs)) return ALLOWED;
    return refused(verdict.range);
  }

  function checkHost(hostname: string): TargetVerdict | undefined {
    if (isLocalName(hostname)) return checkAddress(LOCALHOST_AS);
    return parseAddress(hostname) ? checkAddress(hostname) : undefined;
  }

  return { guarded: true, checkAddress, checkHost };
}

/**
 * The verdict on a target URL before any DNS: its host as `new URL()` normalises it (so `127.1`,
 * `2130706433`, `0x7f000001` and `0177.0.0.1` all arrive here as `127.0.0.1`). A URL that does not
 * parse is allowed here: the endpoint's own validation refuses it with a better message.
 */
export function checkTargetUrl(url: string, rules: TargetRules): TargetVerdict {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return ALLOWED;
  }
  return rules.checkHost(hostname) ?? ALLOWED;
}
