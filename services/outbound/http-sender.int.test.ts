import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { lookup as dnsLookup } from "node:dns";
import { compileTargetPolicy } from "../../domain/targets/policy.js";
import { createHttpSender, type HttpSenderOptions, type OutboundRequest } from "./http-sender.js";
import { BlockedTargetError, guardedLookup } from "./target-connector.js";
import { eventually } from "../../test/support/receiver.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const timers = new Set<NodeJS.Timeout>();
let targetHits = 0;
let connections = 0;
/** Every request and connection either loopback server saw, for the SSRF guard's "nothing arrived". */
let requests = 0;
let v6Connections = 0;
/** What `/endless` managed to hand to its socket before the client stopped reading and closed it. */
const ENDLESS_TOTAL = 50 * 1024 * 1024;
let endless: { written: number; closed: boolean } = { written: 0, closed: false };

const routes: Record<string, Handler> = {
  "/ok": (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-request-from": "10.1.2.3" });
    res.end("thanks, received");
  },
  "/error": (_req, res) => {
    res.writeHead(500);
    res.end("boom");
  },
  "/redirect": (_req, res) => {
    res.writeHead(301, { location: `${baseUrl}/target` });
    res.end();
  },
  "/target": (_req, res) => {
    targetHits++;
    res.end("followed");
  },
  "/throttle": (_req, res) => {
    res.writeHead(429, { "retry-after": "120" });
    res.end("slow down");
  },
  "/hang": () => {
    // never answers; the client's deadline must fire
  },
  "/trickle": (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("a");
    let sent = 0;
    const tick = setInterval(() => {
      if (res.destroyed || ++sent > 30) {
        clearInterval(tick);
        timers.delete(tick);
        if (!res.destroyed) res.end();
        return;
      }
      res.write("b");
    }, 100);
    timers.add(tick);
  },
  "/reset": (req) => {
    req.socket.destroy();
  },
  "/huge": (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": String(5 * 1024 * 1024) });
    res.end(Buffer.alloc(5 * 1024 * 1024, "x"));
  },
  "/endless": (_req, res) => {
    // 50 MB in 64 KiB chunks, written only as fast as the client drains them (backpressure), so
    // `written` counts what the client read plus the socket buffers: a bounded loop of 800 writes.
    const state: typeof endless = { written: 0, closed: false };
    endless = state;
    const chunk = Buffer.alloc(64 * 1024, "y");
    res.on("close", () => {
      state.closed = true;
    });
    res.writeHead(200, { "content-type": "text/plain" });
    const pump = () => {
      while (!res.destroyed && state.written < ENDLESS_TOTAL) {
        state.written += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  },
  "/leaky": (_req, res) => {
    res.writeHead(400, { "content-type": "text/plain", "set-cookie": "session=abc123" });
    res.end("user alice@example.com sent Authorization: Bearer sk-abcdef0123456789 which is invalid");
  },
};

let server: Server;
let baseUrl = "";
let closedPortUrl = "";
// These tests talk to a loopback receiver, so the SSRF guard is off here; its own tests are below.
const sender = createHttpSender({ targetPolicy: { allowPrivate: true } });
let v6Server: Server;
let v4Port = 0;
let v6Port = 0;

function listen(s: Server, host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve) => s.listen(0, host, () => resolve((s.address() as AddressInfo).port)));
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  res.on("error", () => {});
  req.resume(); // drain the request body
  const handler = routes[new URL(req.url ?? "/", "http://x").pathname];
  if (handler) handler(req, res);
  else res.writeHead(404).end();
}

function post(path: string, timeoutMs = 2_000): OutboundRequest {
  return {
    url: `${baseUrl}${path}`,
    headers: { "content-type": "application/json", "webhook-id": "msg_test" },
    body: JSON.stringify({ type: "test.event", data: { n: 1 } }),
    timeoutMs,
  };
}

beforeAll(async () => {
  server = createServer(handle);
  server.on("connection", () => connections++);
  v4Port = await listen(server);
  baseUrl = `http://127.0.0.1:${v4Port}`;
  v6Server = createServer(handle);
  v6Server.on("connection", () => v6Connections++);
  v6Port = await listen(v6Server, "::1");

  const closed = createServer();
  closedPortUrl = `http://127.0.0.1:${await listen(closed)}/`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  await sender.close();
  for (const s of [server, v6Server]) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

describe("createHttpSender", () => {
  it("returns the status, headers and a body snippet for a 200", async () => {
    const result = await sender.send({ ...post("/ok"), withResponseHeaders: true });
    expect(result.statusCode).toBe(200);
    expect(result.networkError).toBeUndefined();
    expect(result.responseSnippet).toBe("thanks, received");
    expect(result.responseHeaders?.["content-type"]).toBe("text/plain");
    expect(result.responseHeaders?.["x-request-from"]).toBe("[REDACTED:ip]");
    expect(Number.isInteger(result.latencyMs)).toBe(true);
    expect(result.startedAt).toBeInstanceOf(Date);
  });

  it("leaves the response headers out unless asked for them", async () => {
    const result = await sender.send(post("/ok"));
    expect(result.statusCode).toBe(200);
    expect(result.responseHeaders).toBeUndefined();
  });

  it("keeps connections alive across sequential requests", async () => {
    await sender.send(post("/ok"));
    const before = connections;
    for (let i = 0; i < 3; i++) expect((await sender.send(post("/ok"))).statusCode).toBe(200);
    expect(connections).toBe(before);
  });

  it("returns a 500 as a status code", async () => {
    const result = await sender.send(post("/error"));
    expect(result).toMatchObject({ statusCode: 500, responseSnippet: "boom" });
    expect(result.networkError).toBeUndefined();
  });

  it("never follows redirects", async () => {
    const result = await sender.send({ ...post("/redirect"), withResponseHeaders: true });
    expect(result.statusCode).toBe(301);
    expect(result.responseHeaders?.location).toBe(`${baseUrl.replace("127.0.0.1", "[REDACTED:ip]")}/target`);
    expect(targetHits).toBe(0);
  });

  it("returns Retry-After raw on a 429", async () => {
    const result = await sender.send(post("/throttle"));
    expect(result).toMatchObject({ statusCode: 429, retryAfter: "120" });
  });

  it("times out a receiver that never answers", async () => {
    const started = Date.now();
    const result = await sender.send(post("/hang", 300));
    expect(result).toMatchObject({ networkError: "timeout", error: "timed out after 300 ms" });
    expect(result.statusCode).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result.latencyMs).toBeGreaterThanOrEqual(250);
  });

  it("times out a body that trickles past the deadline", async () => {
    const started = Date.now();
    const result = await sender.send(post("/trickle", 300));
    expect(result.networkError).toBe("timeout");
    expect(result.statusCode).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("maps a reset connection to connection_error", async () => {
    const result = await sender.send(post("/reset"));
    expect(result.networkError).toBe("connection_error");
    expect(result.error).toMatch(/^[A-Z_]+$/);
  });

  it("maps a closed port to connection_error", async () => {
    const result = await sender.send({ ...post("/"), url: closedPortUrl });
    expect(result).toMatchObject({ networkError: "connection_error", error: "ECONNREFUSED" });
  });

  it("never throws, even for a malformed URL", async () => {
    const result = await sender.send({ ...post("/"), url: "not a url" });
    expect(result.networkError).toBe("connection_error");
  });

  it("reads a bounded prefix of a huge body and returns quickly", async () => {
    const started = Date.now();
    const result = await sender.send(post("/huge", 5_000));
    expect(result.statusCode).toBe(200);
    expect(result.responseSnippet).toBe("x".repeat(1024));
    expect(Date.now() - started).toBeLessThan(1_000);
    // the sender stays usable afterwards
    expect((await sender.send(post("/ok"))).statusCode).toBe(200);
  });

  it("stops reading a 50 MB body after the 20 KiB cap and closes the connection", async () => {
    const result = await sender.send(post("/endless", 10_000));
    expect(result.statusCode).toBe(200);
    expect(Buffer.byteLength(result.responseSnippet ?? "")).toBeLessThanOrEqual(1024);
    expect(result.responseSnippet).toBe("y".repeat(1024));
    await eventually(() => endless.closed, 5_000, "the client to close the endless response");
    // Had the body been read to the end, all 50 MB would have been written. What went is the 20 KiB
    // read plus what the loopback socket buffers took: about 3.75 MB on Linux (send buffer up to
    // tcp_wmem's 4 MB), as much as a raw client that pauses after its first read lets through.
    expect(endless.written).toBeGreaterThan(0);
    expect(endless.written).toBeLessThan(8 * 1024 * 1024);
    expect((await sender.send(post("/ok"))).statusCode).toBe(200);
  });

  it("honours smaller limits", async () => {
    const small = createHttpSender({ maxBodyBytes: 100, snippetBytes: 10, connectionsPerOrigin: 2, targetPolicy: { allowPrivate: true } });
    try {
      const result = await small.send(post("/huge"));
      expect(result.responseSnippet).toBe("x".repeat(10));
    } finally {
      await small.close();
    }
  });

  it("redacts secrets in the snippet and secret headers", async () => {
    const result = await sender.send({ ...post("/leaky"), withResponseHeaders: true });
    expect(result.statusCode).toBe(400);
    expect(result.responseSnippet).not.toContain("alice@example.com");
    expect(result.responseSnippet).not.toContain("sk-abcdef0123456789");
    expect(result.responseSnippet).toContain("Bearer [REDACTED");
    expect(result.responseHeaders?.["set-cookie"]).toBe("[REDACTED]");
  });
});

describe("createHttpSender's SSRF guard (loopback only: no traffic leaves this machine)", () => {
  /** Every loopback spelling of issue 4, each aimed at a port where a server listens. */
  const spellings = (): [string, string][] => [
    ["127.0.0.1", `http://127.0.0.1:${v4Port}/ok`],
    ["127.1", `http://127.1:${v4Port}/ok`],
    ["2130706433", `http://2130706433:${v4Port}/ok`],
    ["0x7f000001", `http://0x7f000001:${v4Port}/ok`],
    ["0177.0.0.1", `http://0177.0.0.1:${v4Port}/ok`],
    ["[::1]", `http://[::1]:${v6Port}/ok`],
    ["[::ffff:127.0.0.1]", `http://[::ffff:127.0.0.1]:${v4Port}/ok`],
    ["localhost", `http://localhost:${v4Port}/ok`],
  ];

  async function withSender<T>(options: HttpSenderOptions, use: (s: ReturnType<typeof createHttpSender>) => Promise<T>): Promise<T> {
    const s = createHttpSender(options);
    try {
      return await use(s);
    } finally {
      await s.close();
    }
  }

  const seen = () => ({ requests, connections: connections + v6Connections });

  it("is on by default and refuses every loopback spelling before connecting", async () => {
    await withSender({}, async (guarded) => {
      for (const [name, url] of spellings()) {
        const before = seen();
        const result = await guarded.send({ ...post("/ok"), url });
        expect(result, name).toMatchObject({ networkError: "blocked_target", error: "target address is in a non-global range (loopback)" });
        expect(result.statusCode, name).toBeUndefined();
        expect(seen(), `${name}: the receiver saw nothing, not even a connection`).toEqual(before);
      }
    });
  });

  it("refuses with allowedCidrs that do not cover the address", async () => {
    await withSender({ targetPolicy: { allowedCidrs: ["10.0.0.0/8", "fd00::/8"] } }, async (guarded) => {
      const before = seen();
      expect((await guarded.send({ ...post("/ok"), url: `http://127.0.0.1:${v4Port}/ok` })).networkError).toBe("blocked_target");
      expect((await guarded.send({ ...post("/ok"), url: `http://localhost:${v4Port}/ok` })).networkError).toBe("blocked_target");
      expect(seen()).toEqual(before);
    });
  });

  it("lets the same requests through with allowPrivate", async () => {
    await withSender({ targetPolicy: { allowPrivate: true } }, async (open) => {
      for (const [name, url] of spellings()) {
        const before = requests;
        const result = await open.send({ ...post("/ok"), url });
        expect(result.statusCode, name).toBe(200);
        expect(requests, name).toBe(before + 1);
      }
    });
  });

  it("lets allowlisted ranges through: 127.0.0.0/8 and ::1/128", async () => {
    await withSender({ targetPolicy: { allowedCidrs: ["127.0.0.0/8", "::1/128"] } }, async (allowlisted) => {
      for (const [name, url] of spellings()) {
        const before = requests;
        expect((await allowlisted.send({ ...post("/ok"), url })).statusCode, name).toBe(200);
        expect(requests, name).toBe(before + 1);
      }
    });
    await withSender({ targetPolicy: { allowedCidrs: ["127.0.0.0/8"] } }, async (v4Only) => {
      expect((await v4Only.send({ ...post("/ok"), url: `http://127.0.0.1:${v4Port}/ok` })).statusCode).toBe(200);
      expect((await v4Only.send({ ...post("/ok"), url: `http://[::1]:${v6Port}/ok` })).networkError).toBe("blocked_target");
    });
  });

  it("refuses an invalid allowlist at construction", () => {
    expect(() => createHttpSender({ targetPolicy: { allowedCidrs: ["127.0.0.0/40"] } })).toThrow(RangeError);
  });

  it("checks every address a name resolves to and hands on only allowed ones", async () => {
    const strict = compileTargetPolicy();
    const lookupWith = (answer: { address: string; family: number }[], all: boolean) =>
      new Promise<{ err: unknown; result: unknown }>((resolve) => {
        const fake = ((_h: string, _o: unknown, cb: (e: null, a: typeof answer) => void) => cb(null, answer)) as unknown as typeof dnsLookup;
        guardedLookup(strict, fake)("rebind.test", { all }, (err, address) => resolve({ err, result: address }));
      });
    const mixed = [
      { address: "127.0.0.1", family: 4 },
      { address: "93.184.216.34", family: 4 },
      { address: "::ffff:10.0.0.1", family: 6 },
    ];
    expect(await lookupWith(mixed, true)).toEqual({ err: null, result: [{ address: "93.184.216.34", family: 4 }] });
    expect(await lookupWith(mixed, false)).toEqual({ err: null, result: "93.184.216.34" });
    const blocked = await lookupWith(
      [
        { address: "169.254.169.254", family: 4 },
        { address: "::1", family: 6 },
      ],
      true,
    );
    expect(blocked.err).toBeInstanceOf(BlockedTargetError);
    expect((blocked.err as Error).message).toBe("target address is in a non-global range (linkLocal)");
  });

  it("refuses localhost through real DNS", async () => {
    const { err } = await new Promise<{ err: unknown }>((resolve) => guardedLookup(compileTargetPolicy())("localhost", { all: true }, (e) => resolve({ err: e })));
    expect(err).toBeInstanceOf(BlockedTargetError);
  });
});
