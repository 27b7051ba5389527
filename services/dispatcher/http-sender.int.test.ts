import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpSender, type OutboundRequest } from "./http-sender.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const timers = new Set<NodeJS.Timeout>();
let targetHits = 0;
let connections = 0;

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
  "/leaky": (_req, res) => {
    res.writeHead(400, { "content-type": "text/plain", "set-cookie": "session=abc123" });
    res.end("user alice@example.com sent Authorization: Bearer sk-abcdef0123456789 which is invalid");
  },
};

let server: Server;
let baseUrl = "";
let closedPortUrl = "";
const sender = createHttpSender();

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)));
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
  server = createServer((req, res) => {
    res.on("error", () => {});
    req.resume(); // drain the request body
    const handler = routes[new URL(req.url ?? "/", "http://x").pathname];
    if (handler) handler(req, res);
    else res.writeHead(404).end();
  });
  server.on("connection", () => connections++);
  baseUrl = `http://127.0.0.1:${await listen(server)}`;

  const closed = createServer();
  closedPortUrl = `http://127.0.0.1:${await listen(closed)}/`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  await sender.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("createHttpSender", () => {
  it("returns the status, headers and a body snippet for a 200", async () => {
    const result = await sender.send(post("/ok"));
    expect(result.statusCode).toBe(200);
    expect(result.networkError).toBeUndefined();
    expect(result.responseSnippet).toBe("thanks, received");
    expect(result.responseHeaders?.["content-type"]).toBe("text/plain");
    expect(result.responseHeaders?.["x-request-from"]).toBe("[REDACTED:ip]");
    expect(Number.isInteger(result.latencyMs)).toBe(true);
    expect(result.startedAt).toBeInstanceOf(Date);
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
    const result = await sender.send(post("/redirect"));
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

  it("honours smaller limits", async () => {
    const small = createHttpSender({ maxBodyBytes: 100, snippetBytes: 10, connectionsPerOrigin: 2 });
    try {
      const result = await small.send(post("/huge"));
      expect(result.responseSnippet).toBe("x".repeat(10));
    } finally {
      await small.close();
    }
  });

  it("redacts secrets in the snippet and secret headers", async () => {
    const result = await sender.send(post("/leaky"));
    expect(result.statusCode).toBe(400);
    expect(result.responseSnippet).not.toContain("alice@example.com");
    expect(result.responseSnippet).not.toContain("sk-abcdef0123456789");
    expect(result.responseSnippet).toContain("Bearer [REDACTED");
    expect(result.responseHeaders?.["set-cookie"]).toBe("[REDACTED]");
  });
});
