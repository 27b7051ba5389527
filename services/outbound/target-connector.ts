import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIP, type LookupFunction, type Socket } from "node:net";
import { buildConnector } from "undici";
import type { TargetRules } from "../../domain/targets/policy.js";

/** The code of the error a refused target fails its connection with; `http-sender` maps it to `blocked_target`. */
export const BLOCKED_TARGET_CODE = "ERR_ZEN_BLOCKED_TARGET";

/** A connection the SSRF guard refused. Its message names the range, never the address. */
export class BlockedTargetError extends Error {
  override name = "BlockedTargetError";
  readonly code = BLOCKED_TARGET_CODE;
  constructor(readonly reason: string) {
    super(reason);
  }
}

type LookupCallback = Parameters<LookupFunction>[2];

/**
 * `dns.lookup` that hands on only addresses the rules allow, and fails with a BlockedTargetError
 * when none is left. Refused addresses are dropped rather than failing the whole answer: the socket
 * can only ever dial what this returns, so a mixed (rebinding) answer reaches the allowed ones only.
 */
export function guardedLookup(rules: TargetRules, resolve: typeof dnsLookup = dnsLookup): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    resolve(hostname, { ...options, all: true }, (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const verdicts = addresses.map((a) => rules.checkAddress(a.address));
      const allowed = addresses.filter((_, i) => verdicts[i]!.allowed);
      if (allowed.length === 0) {
        const first = verdicts.find((v) => !v.allowed);
        return callback(new BlockedTargetError(first && !first.allowed ? first.reason : "name resolved to no address"), "", 0);
      }
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

/**
 * An undici connector that dials only addresses the rules allow: an IP-literal host is checked
 * before any packet is sent (Node skips `lookup` for literals), a name (`localhost` included) on
 * every address DNS gives through `guardedLookup`, and
 * the connected socket's peer address once more, in case a path around `lookup` exists.
 */
export function guardedConnector(rules: TargetRules, build: buildConnector.BuildOptions = {}): buildConnector.connector {
  const connect = buildConnector({ ...build, lookup: guardedLookup(rules) } as buildConnector.BuildOptions);
  return (options, callback) => {
    // undici hands IPv6 literals over without brackets; names go through `guardedLookup`, localhost too.
    const literal = isIP(options.hostname) ? rules.checkAddress(options.hostname) : undefined;
    if (literal && !literal.allowed) return callback(new BlockedTargetError(literal.reason), null);
    connect(options, (err, socket) => {
      if (err) return callback(err, null);
      const peer = (socket as Socket).remoteAddress;
      const verdict = peer === undefined ? undefined : rules.checkAddress(peer);
      if (verdict && !verdict.allowed) {
        socket.destroy();
        return callback(new BlockedTargetError(verdict.reason), null);
      }
      callback(null, socket);
    });
  };
}
