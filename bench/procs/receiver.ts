import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { serve } from "../lib/rpc.js";
import { summarize } from "../lib/stats.js";

/**
 * The webhook receiver: one Node process on loopback. Each path has a secret (every request is
 * verified with the `standardwebhooks` package, as a real receiver would) and a status to answer.
 * It counts distinct (path, webhook-id) pairs, duplicates and failed verifications, and, when the
 * payload carries `sentAt` (a publisher's wall clock), the ingest-to-receiver latency.
 */
interface PathState {
  webhook: Webhook | null;
  status: number;
  /** webhook-id → wall-clock ms of its first successful arrival. */
  firstSeen: Map<string, number>;
  requests: number;
  duplicates: number;
  unverified: number;
  refused: number;
  latencies: number[];
}

const paths = new Map<string, PathState>();
/** Deliveries the bench waits for: watch id → the (path, webhook-id) pairs not seen yet. */
const watches = new Map<string, Array<[path: string, id: string]>>();
const wallNow = () => performance.timeOrigin + performance.now();

function stateOf(path: string): PathState {
  let state = paths.get(path);
  if (!state) {
    state = { webhook: null, status: 200, firstSeen: new Map(), requests: 0, duplicates: 0, unverified: 0, refused: 0, latencies: [] };
    paths.set(path, state);
  }
  return state;
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  const now = wallNow();
  const state = stateOf(req.url ?? "/");
  state.requests++;
  // Status 0: a hanging endpoint, which never answers (the platform's timeout ends the attempt).
  if (state.status === 0) {
    state.refused++;
    return;
  }
  if (state.status >= 300) {
    state.refused++;
    res.writeHead(state.status, { "content-type": "text/plain" }).end("down");
    return;
  }
  let body: any;
  try {
    body = state.webhook ? state.webhook.verify(raw, req.headers as Record<string, string>) : JSON.parse(raw);
  } catch {
    state.unverified++;
    res.writeHead(400, { "content-type": "text/plain" }).end("bad signature");
    return;
  }
  const id = String(req.headers["webhook-id"]);
  if (state.firstSeen.has(id)) state.duplicates++;
  else {
    state.firstSeen.set(id, now);
    const sentAt = body?.data?.sentAt;
    if (typeof sentAt === "number") state.latencies.push(now - sentAt);
  }
  res.writeHead(200, { "content-type": "text/plain" }).end("ok");
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
  req.on("error", () => res.destroy());
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

function pathStats(path: string) {
  const s = stateOf(path);
  let first = Infinity;
  let last = 0;
  for (const t of s.firstSeen.values()) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  return {
    path,
    distinct: s.firstSeen.size,
    requests: s.requests,
    duplicates: s.duplicates,
    unverified: s.unverified,
    refused: s.refused,
    firstAt: s.firstSeen.size ? first : null,
    lastAt: s.firstSeen.size ? last : null,
  };
}

serve(
  {
    /** Sets a path's secret (null: no verification) and the status it answers. */
    configure({ path, secret, status }: { path: string; secret?: string | null; status?: number }) {
      const s = stateOf(path);
      if (secret !== undefined) s.webhook = secret ? new Webhook(secret) : null;
      if (status !== undefined) s.status = status;
    },
    setStatus({ prefix, status }: { prefix: string; status: number }) {
      for (const [path, s] of paths) if (path.startsWith(prefix)) s.status = status;
    },
    /** Forgets what arrived on paths starting with `prefix` (secrets and statuses stay). */
    reset({ prefix }: { prefix: string }) {
      for (const [path, s] of paths) {
        if (!path.startsWith(prefix)) continue;
        Object.assign(s, { firstSeen: new Map(), requests: 0, duplicates: 0, unverified: 0, refused: 0, latencies: [] });
      }
    },
    /** Totals over paths starting with `prefix`: distinct deliveries, first/last arrival, errors. */
    stats({ prefix }: { prefix: string }) {
      const all = [...paths.keys()].filter((p) => p.startsWith(prefix)).map(pathStats);
      const firsts = all.map((s) => s.firstAt).filter((t): t is number => t !== null);
      const lasts = all.map((s) => s.lastAt).filter((t): t is number => t !== null);
      const sum = (k: "distinct" | "requests" | "duplicates" | "unverified" | "refused") => all.reduce((n, s) => n + s[k], 0);
      return {
        paths: all.length,
        distinct: sum("distinct"),
        requests: sum("requests"),
        duplicates: sum("duplicates"),
        unverified: sum("unverified"),
        refused: sum("refused"),
        firstAt: firsts.length ? Math.min(...firsts) : null,
        lastAt: lasts.length ? Math.max(...lasts) : null,
      };
    },
    /** Distinct arrivals on paths starting with `prefix` whose first arrival is in [from, to). */
    countBetween({ prefix, from, to }: { prefix: string; from: number; to: number }) {
      let n = 0;
      for (const [path, s] of paths) {
        if (!path.startsWith(prefix)) continue;
        for (const t of s.firstSeen.values()) if (t >= from && t < to) n++;
      }
      return n;
    },
    /** Of `ids`, how many never arrived on each of `paths` (every accepted message must). */
    missing({ paths: wanted, ids }: { paths: string[]; ids: string[] }) {
      let missing = 0;
      const sample: string[] = [];
      for (const path of wanted) {
        const seen = stateOf(path).firstSeen;
        for (const id of ids) {
          if (seen.has(id)) continue;
          missing++;
          if (sample.length < 5) sample.push(`${path} ${id}`);
        }
      }
      return { missing, sample };
    },
    /** Starts waiting for every id of `ids` on every path of `paths`; `remaining` reports progress. */
    watch({ key, paths: wanted, ids }: { key: string; paths: string[]; ids: string[] }) {
      const pending: Array<[string, string]> = [];
      for (const path of wanted) {
        const seen = stateOf(path).firstSeen;
        for (const id of ids) if (!seen.has(id)) pending.push([path, id]);
      }
      watches.set(key, pending);
      return pending.length;
    },
    /** How many of a watch's deliveries have not arrived yet (and a few of them). */
    remaining({ key, drop }: { key: string; drop?: boolean }) {
      const pending = (watches.get(key) ?? []).filter(([path, id]) => !stateOf(path).firstSeen.has(id));
      if (drop) watches.delete(key);
      else watches.set(key, pending);
      return { remaining: pending.length, sample: pending.slice(0, 5).map(([p, i]) => `${p} ${i}`) };
    },
    /** Ingest-to-receiver latency (ms) of the arrivals on paths starting with `prefix`. */
    latency({ prefix }: { prefix: string }) {
      const all: number[] = [];
      for (const [path, s] of paths) if (path.startsWith(prefix)) all.push(...s.latencies);
      return summarize(all);
    },
  },
  { port, url: `http://127.0.0.1:${port}` },
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);
