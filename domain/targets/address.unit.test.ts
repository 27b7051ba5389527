import { describe, expect, it } from "vitest";
import { classifyAddress, isValidCidr } from "./address.js";
import { checkTargetUrl, compileTargetPolicy, isLocalName } from "./policy.js";

// Classification only: nothing here opens a socket.
const refusedV4: [string, string][] = [
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"], // "this network" 0/8
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["169.254.169.254", "linkLocal"], // cloud metadata
  ["100.64.0.1", "carrierGradeNat"],
  ["100.127.255.255", "carrierGradeNat"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["240.0.0.1", "reserved"],
  ["192.0.0.8", "reserved"], // IETF protocol assignments
  ["192.0.2.1", "reserved"], // TEST-NET-1
  ["198.51.100.7", "reserved"], // TEST-NET-2
  ["203.0.113.9", "reserved"], // TEST-NET-3
  ["198.18.0.1", "reserved"], // benchmarking
  ["192.88.99.1", "reserved"], // 6to4 relay anycast
];

const refusedV6: [string, string][] = [
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["fc00::1", "uniqueLocal"],
  ["fd12:3456:789a::1", "uniqueLocal"],
  ["fe80::1", "linkLocal"],
  ["fe80::1%eth0", "linkLocal"],
  ["fec0::1", "deprecatedSiteLocal"],
  ["ff02::1", "multicast"],
  ["ff0e::1", "multicast"],
  ["2001:db8::1", "reserved"], // documentation
  ["2001:2::1", "benchmarking"],
  ["100::1", "discard"],
  ["::7f00:1", "unicast"], // deprecated IPv4-compatible, outside 2000::/3
  ["4000::1", "unicast"], // unallocated, outside 2000::/3
  ["64:ff9b::7f00:1", "rfc6052/loopback"], // NAT64 of 127.0.0.1
  ["64:ff9b::a00:1", "rfc6052/private"], // NAT64 of 10.0.0.1
  ["64:ff9b:1::a00:1", "rfc6052"], // NAT64 local-use: never global
  ["::ffff:0:7f00:1", "rfc6145/loopback"], // SIIT of 127.0.0.1
  ["2002:7f00:1::1", "6to4/loopback"],
  ["2002:c0a8:101::1", "6to4/private"],
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", "teredo/loopback"], // client 127.0.0.1 (inverted bits)
  ["2001:0:a00:1:8000:63bf:3fff:fdd2", "teredo/private"], // server 10.0.0.1
];

const global: string[] = [
  "1.1.1.1",
  "8.8.8.8",
  "93.184.216.34",
  "100.63.255.255", // just below CGNAT
  "100.128.0.0", // just above CGNAT
  "172.15.255.255",
  "172.32.0.0",
  "2606:4700:4700::1111",
  "2a00:1450:4001:830::200e",
  "64:ff9b::808:808", // NAT64 of 8.8.8.8
  "2002:808:808::1", // 6to4 of 8.8.8.8
];

describe("classifyAddress", () => {
  it.each(refusedV4)("refuses IPv4 %s (%s)", (ip, range) => {
    expect(classifyAddress(ip)).toMatchObject({ family: "ipv4", range, global: false });
  });

  it.each(refusedV6)("refuses IPv6 %s (%s)", (ip, range) => {
    expect(classifyAddress(ip)).toMatchObject({ family: "ipv6", range, global: false });
  });

  it.each(global)("accepts global unicast %s", (ip) => {
    expect(classifyAddress(ip)?.global).toBe(true);
  });

  it("judges Teredo by the addresses it embeds", () => {
    // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (documentation: refused)
    expect(classifyAddress("2001:0:4136:e378:8000:63bf:3fff:fdd2")).toMatchObject({ range: "teredo/reserved", global: false });
    // client 8.8.8.8 (inverted: f7f7:f7f7), server 65.54.227.120: both global
    expect(classifyAddress("2001:0:4136:e378:8000:63bf:f7f7:f7f7")).toMatchObject({ range: "teredo/unicast", global: true });
  });

  it.each([
    ["::ffff:127.0.0.1", "127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "127.0.0.1", "loopback"],
    ["[::ffff:127.0.0.1]", "127.0.0.1", "loopback"],
    ["::ffff:10.1.2.3", "10.1.2.3", "private"],
    ["::ffff:169.254.169.254", "169.254.169.254", "linkLocal"],
    ["::ffff:0.0.0.0", "0.0.0.0", "unspecified"],
  ])("canonicalises IPv4-mapped %s to %s first", (ip, address, range) => {
    expect(classifyAddress(ip)).toEqual({ address, family: "ipv4", range, global: false });
  });

  it("canonicalises a mapped global address to IPv4 and accepts it", () => {
    expect(classifyAddress("::ffff:8.8.8.8")).toEqual({ address: "8.8.8.8", family: "ipv4", range: "unicast", global: true });
  });

  it.each(["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::1]"])("classifies the loopback spelling %s", (ip) => {
    expect(classifyAddress(ip)).toMatchObject({ range: "loopback", global: false });
  });

  it.each(["example.com", "localhost", "", "1.2.3.4.5", "::g"])("says %j is not an IP", (text) => {
    expect(classifyAddress(text)).toBeUndefined();
  });
});

describe("compileTargetPolicy", () => {
  const strict = compileTargetPolicy();

  it("refuses every non-global address and names only the range", () => {
    for (const [ip, range] of [...refusedV4, ...refusedV6]) {
      const verdict = strict.checkAddress(ip);
      expect(verdict).toEqual({ allowed: false, range, reason: `target address is in a non-global range (${range})` });
    }
    expect(strict.checkAddress("not-an-ip")).toMatchObject({ allowed: false, range: "not an IP address" });
  });

  it("allows global unicast", () => {
    for (const ip of global) expect(strict.checkAddress(ip)).toEqual({ allowed: true });
  });

  it("lets everything through with allowPrivate", () => {
    const open = compileTargetPolicy({ allowPrivate: true });
    expect(open.guarded).toBe(false);
    for (const [ip] of [...refusedV4, ...refusedV6]) expect(open.checkAddress(ip).allowed).toBe(true);
    expect(open.checkHost("localhost")).toEqual({ allowed: true });
  });

  it("allows allowlisted CIDRs and nothing more", () => {
    const rules = compileTargetPolicy({ allowedCidrs: ["127.0.0.0/8", " 10.1.0.0/16", "fd00::/8", "192.168.1.7"] });
    expect(rules.guarded).toBe(true);
    for (const ip of ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "10.1.200.3", "fd00::1", "192.168.1.7", "::ffff:192.168.1.7"]) {
      expect(rules.checkAddress(ip), ip).toEqual({ allowed: true });
    }
    for (const ip of ["::1", "10.2.0.1", "fc00::1", "192.168.1.8", "169.254.169.254", "0.0.0.0"]) {
      expect(rules.checkAddress(ip).allowed, ip).toBe(false);
    }
    expect(rules.checkAddress("8.8.8.8")).toEqual({ allowed: true });
  });

  it("matches an IPv4-mapped allowlist entry against the IPv4 address", () => {
    const rules = compileTargetPolicy({ allowedCidrs: ["::ffff:127.0.0.0/104"] });
    expect(rules.checkAddress("127.0.0.1")).toEqual({ allowed: true });
    expect(rules.checkAddress("::ffff:127.0.0.1")).toEqual({ allowed: true });
    expect(rules.checkAddress("::1").allowed).toBe(false);
  });

  it("allows ::1 only when an IPv6 range says so", () => {
    expect(compileTargetPolicy({ allowedCidrs: ["::1/128"] }).checkAddress("::1")).toEqual({ allowed: true });
  });

  it.each(["127.0.0.0/33", "example.com/8", "10.0.0.0/", "not a cidr", ""])("refuses the invalid CIDR %j", (cidr) => {
    expect(() => compileTargetPolicy({ allowedCidrs: [cidr] })).toThrow(RangeError);
    expect(isValidCidr(cidr)).toBe(false);
  });

  it("judges localhost names as loopback and leaves other names to DNS", () => {
    for (const name of ["localhost", "LOCALHOST", "localhost.", "api.localhost", "localhost.localdomain"]) {
      expect(isLocalName(name), name).toBe(true);
      expect(strict.checkHost(name), name).toMatchObject({ allowed: false, range: "loopback" });
    }
    expect(isLocalName("localhost.example.com")).toBe(false);
    expect(strict.checkHost("example.com")).toBeUndefined();
    expect(strict.checkHost("[::1]")).toMatchObject({ allowed: false, range: "loopback" });
    expect(compileTargetPolicy({ allowedCidrs: ["127.0.0.0/8"] }).checkHost("localhost")).toEqual({ allowed: true });
  });
});

describe("checkTargetUrl (the WHATWG URL parser normalises the host first)", () => {
  const strict = compileTargetPolicy();

  it.each([
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://0x7f.1/hook",
    "http://127.0.0.1./hook",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[0:0:0:0:0:ffff:7f00:1]/hook",
    "http://localhost:3000/hook",
    "https://LocalHost./hook",
    "http://user@127.0.0.1/hook",
  ])("refuses the loopback spelling %s", (url) => {
    expect(checkTargetUrl(url, strict)).toMatchObject({ allowed: false, range: "loopback" });
  });

  it.each([
    ["http://10.0.0.1/", "private"],
    ["http://0xa000001/", "private"],
    ["http://169.254.169.254/latest/meta-data", "linkLocal"],
    ["http://[fd00::1]/", "uniqueLocal"],
    ["http://[fe80::1]/", "linkLocal"],
    ["http://0/", "unspecified"],
    ["http://100.64.0.1/", "carrierGradeNat"],
  ])("refuses %s (%s)", (url, range) => {
    expect(checkTargetUrl(url, strict)).toMatchObject({ allowed: false, range });
  });

  it.each(["https://example.com/hook", "https://8.8.8.8/hook", "https://[2606:4700:4700::1111]/", "not a url"])("leaves %s alone", (url) => {
    expect(checkTargetUrl(url, strict)).toEqual({ allowed: true });
  });
});
