import { BlockList, isIP } from "node:net";
import * as E from "./errors.js";

/** Loopback, private, link-local, CGNAT, unspecified and multicast ranges, v4 and v6. */
const blocked = new BlockList();
for (const [net, bits] of [["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
  ["172.16.0.0", 12], ["192.168.0.0", 16], ["224.0.0.0", 4], ["240.0.0.0", 4]] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["::ffff:0:0", 96]] as const) {
  blocked.addSubnet(net, bits, "ipv6");
}

/**
 * Refuses (422) a target URL that names a private address literally: `localhost` or a blocked IP.
 * Names that resolve to private addresses are not caught here: that needs the connect-time guard
 * of the delivery-hardening work (issue 4), which checks the address actually dialled.
 */
export function assertPublicTarget(url: string, allowPrivateTargets: boolean): void {
  if (allowPrivateTargets) return;
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return; // not a URL: the endpoint decider refuses it with its own message
  }
  const family = isIP(host);
  const isPrivate =
    host === "localhost" || host.endsWith(".localhost") || (family !== 0 && blocked.check(host, family === 4 ? "ipv4" : "ipv6"));
  if (isPrivate) throw E.unprocessable("url points at a private, loopback or link-local address");
}
