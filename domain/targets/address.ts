import ipaddr from "ipaddr.js";

/**
 * Which addresses a webhook may be sent to (the SSRF guard's rule, API.md and issue 4 item 5):
 * only global unicast ones. The special-purpose ranges come from ipaddr.js (IANA's registries);
 * this file adds only what the library leaves to its caller: canonicalising IPv4-mapped IPv6,
 * unwrapping the IPv4 address that NAT64, SIIT, 6to4 and Teredo embed, and requiring IPv6 to sit in
 * 2000::/3, the only block IANA allocates for global unicast.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** An IP address and the verdict on it. */
export interface AddressClass {
  /** The canonical form: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes its IPv4 address. */
  address: string;
  family: "ipv4" | "ipv6";
  /** ipaddr.js's range name (`unicast`, `loopback`, `private`…); for an embedding, the embedded one's too (`6to4/loopback`). */
  range: string;
  /** True only for a global unicast address. */
  global: boolean;
}

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR("64:ff9b::/96");

const v4From = (high: number, low: number): ipaddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);

/**
 * The IPv4 addresses an IPv6 address carries, by its range; `undefined` when it carries none.
 * A range that embeds an address nobody can check (NAT64's local-use 64:ff9b:1::/48) carries none
 * and stays refused by its own range.
 */
function embeddedV4(ip: ipaddr.IPv6, range: string): ipaddr.IPv4[] | undefined {
  const p = ip.parts;
  switch (range) {
    case "rfc6145": // SIIT ::ffff:0:a.b.c.d
      return [v4From(p[6]!, p[7]!)];
    case "rfc6052": // NAT64 64:ff9b::a.b.c.d
      return ip.match(NAT64_WELL_KNOWN) ? [v4From(p[6]!, p[7]!)] : undefined;
    case "6to4": // 2002:AABB:CCDD::/48
      return [v4From(p[1]!, p[2]!)];
    case "teredo": // 2001:0:server(32):flags:port:client(32, inverted)
      return [v4From(p[2]!, p[3]!), v4From(p[6]! ^ 0xffff, p[7]! ^ 0xffff)];
    default:
      return undefined;
  }
}

function classifyParsed(ip: Address): Pick<AddressClass, "range" | "global"> {
  if (ip.kind() === "ipv4") {
    const range = ip.range();
    return { range, global: range === "unicast" };
  }
  const v6 = ip as ipaddr.IPv6;
  const range: string = v6.range();
  const embedded = embeddedV4(v6, range);
  if (embedded) {
    const inner = embedded.map((v4) => classifyParsed(v4));
    const refused = inner.find((c) => !c.global);
    return { range: `${range}/${(refused ?? inner[0]!).range}`, global: refused === undefined };
  }
  return { range, global: range === "unicast" && v6.match(GLOBAL_UNICAST_V6) };
}

/** The address with IPv4-mapped IPv6 canonicalised to IPv4, or `undefined` when `text` is not an IP. */
export function parseAddress(text: string): Address | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) return undefined;
  const ip = ipaddr.parse(bare);
  return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

/** Classifies an IP address (any spelling ipaddr.js accepts); `undefined` when `text` is not one. */
export function classifyAddress(text: string): AddressClass | undefined {
  const ip = parseAddress(text);
  if (!ip) return undefined;
  const family = ip.kind();
  const address = family === "ipv6" ? (ip as ipaddr.IPv6).toRFC5952String() : ip.toString();
  return { address, family, ...classifyParsed(ip) };
}

/** Whether `text` is a valid CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address (a /32 or /128). */
export function isValidCidr(text: string): boolean {
  return ipaddr.isValidCIDR(text) || ipaddr.isValid(text);
}

/** Parses a CIDR or a bare address, canonicalising IPv4-mapped IPv6 networks to IPv4 ones; throws a RangeError when invalid. */
export function parseCidr(text: string): [Address, number] {
  if (!ipaddr.isValidCIDR(text)) {
    if (!ipaddr.isValid(text)) throw new RangeError(`not a CIDR or an IP address: ${JSON.stringify(text)}`);
    const ip = ipaddr.parse(text);
    return [ip, ip.kind() === "ipv4" ? 32 : 128];
  }
  const [ip, bits] = ipaddr.parseCIDR(text);
  if (ip.kind() === "ipv6" && bits >= 96 && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(ip as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [ip, bits];
}

/** Whether `ip` lies in one of `cidrs` (matched only against networks of its own family). */
export function inCidrs(ip: Address, cidrs: readonly [Address, number][]): boolean {
  return cidrs.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
}
