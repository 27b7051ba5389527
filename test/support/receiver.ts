import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

/**
 * What a receiver path does with one request: answer a status (after `delayMs`, with headers),
 * hang without answering, reset the connection, or send headers and then dribble the body.
 */
export type Behaviour =
  | { status: number; delayMs?: number; headers?: Record<string, string>; body?: string }
  | { hang: true }
  | { reset: true }
  | { slowBody: true; status: number; chunkEveryMs: number };

export interface ReceivedRequest {
  path: string;
  webhookId: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  verified: boolean;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** The W3C trace context it carried, if any. */
  traceparent?: string;
  /** The status it was answered with; absent when it hung, was reset or had its body dribbled. */
  answered?: number;
}

/**
 * A webhook receiver on loopback. Each path (`/ep/<name>`) has a secret and a behaviour (its body
 * "ok", "nope", or the behaviour's own); every request is verified with the `standardwebhooks`
 * package, as any receiver would.
 */
export async function startReceiver() {
  const secrets = new Map<string, string>();
  const scripts = new Map<string, Behaviour[]>();
  const received: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const nextBehaviour = (path: string): Behaviour => {
    const script = scripts.get(path);
    if (!script || script.length === 0) return { status: 200 };
    // The last behaviour of a script repeats.
    return script.length > 1 ? script.shift()! : script[0]!;
  };
  const server: Server = createServer((req, res) => {
    void readBody(req).then(async (raw) => {
      const path = req.url ?? "/";
      const secret = secrets.get(path);
      let verified = false;
      try {
        if (secret) {
          new Webhook(secret).verify(raw, req.headers as Record<string, string>);
          verified = true;
        }
      } catch {
        verified = false;
      }
      const traceparent = typeof req.headers.traceparent === "string" ? req.headers.traceparent : undefined;
      const behaviour = nextBehaviour(path);
      const answered = "status" in behaviour && !("slowBody" in behaviour) ? behaviour.status : undefined;
      received.push({ path, webhookId: String(req.headers["webhook-id"]), body: JSON.parse(raw || "{}"), verified, at: Date.now(), traceparent, answered });
      if ("hang" in behaviour) return void hanging.add(res);
      if ("reset" in behaviour) return void req.socket.destroy();
      if ("slowBody" in behaviour) {
        res.writeHead(behaviour.status, { "content-type": "text/plain" });
        const timer = setInterval(() => res.write("."), behaviour.chunkEveryMs);
        timers.add(timer);
        res.on("close", () => clearInterval(timer));
        return;
      }
      if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
      res.writeHead(behaviour.status, { "content-type": "text/plain", ...behaviour.headers }).end(behaviour.body ?? (behaviour.status < 300 ? "ok" : "nope"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** The secret the platform gave an endpoint, so this path can verify its requests. */
    setSecret: (path: string, secret: string) => secrets.set(path, secret),
    /** Answers the next requests to `path` with these behaviours in turn; the last one repeats. */
    behave: (path: string, ...script: Behaviour[]) => scripts.set(path, script),
    received,
    on: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearInterval(timer);
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Polls `check` every 50 ms until it returns true, failing after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
