import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

/** What a receiver path does with a request: answer a status, or call the test's own function. */
export type Behaviour = { status: number; delayMs?: number };

export interface ReceivedRequest {
  path: string;
  webhookId: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  verified: boolean;
}

/**
 * A webhook receiver on loopback. Each path (`/ep/<name>`) has a secret and a behaviour; every
 * request is verified with the `standardwebhooks` package, as any receiver would.
 */
export async function startReceiver() {
  const secrets = new Map<string, string>();
  const behaviours = new Map<string, Behaviour>();
  const received: ReceivedRequest[] = [];
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
      received.push({ path, webhookId: String(req.headers["webhook-id"]), body: JSON.parse(raw || "{}"), verified });
      const behaviour = behaviours.get(path) ?? { status: 200 };
      if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
      res.writeHead(behaviour.status, { "content-type": "text/plain" }).end(behaviour.status < 300 ? "ok" : "nope");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** The secret the platform gave an endpoint, so this path can verify its requests. */
    setSecret: (path: string, secret: string) => secrets.set(path, secret),
    behave: (path: string, behaviour: Behaviour) => behaviours.set(path, behaviour),
    received,
    on: (path: string) => received.filter((r) => r.path === path),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
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
