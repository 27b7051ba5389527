import { createDatabase, deleteStreams, type BenchDatabase } from "./resources.js";
import { newPrefix, sleep } from "./env.js";
import { startPlatform, type PlatformOptions, type RunningPlatform } from "./platform.js";
import { startHelper, type Helper } from "./rpc.js";

/** One figure of one run: a number, or a flag/text for the table. */
export type Figures = Record<string, number | boolean | string | null>;

/** A target, checked on the medians: `value op limit`. */
export interface Target {
  name: string;
  value: number | boolean | null;
  op: ">=" | "<=" | "==";
  limit: number | boolean | null;
  /** null when it could not be evaluated (a figure or ceiling missing). */
  met: boolean | null;
}

export interface RunContext {
  quick: boolean;
  run: number;
  receiver: Helper<{ url: string; port: number }>;
  /** Medians so far of figures of earlier scenarios in this invocation (e.g. e2e's rate for backlog). */
  earlier: (scenario: string, figure: string) => number | null;
  log: (message: string) => void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Ceilings whose figures its targets use (run first when this scenario is selected). */
  needs: string[];
  /** Run only in the first run of an invocation (long, no ratio target). */
  once?: boolean;
  /** Left out of --quick unless named in --only. */
  skipInQuick?: boolean;
  run(ctx: RunContext): Promise<Figures>;
  /** Targets on the median figures, given the median ceiling figures. */
  targets?(f: (name: string, agg?: "median" | "max" | "min") => number | null, ceiling: (name: string) => number | null, ctx: { earlier: RunContext["earlier"] }): Target[];
  /** Figures shown in the table, in order. */
  show: Array<[figure: string, label: string]>;
}

export function target(name: string, value: number | null, op: Target["op"], limit: number | null): Target {
  const met = value === null || limit === null || !Number.isFinite(value) || !Number.isFinite(limit)
    ? null
    : op === ">=" ? value >= limit : op === "<=" ? value <= limit : value === limit;
  return { name, value, op, limit, met };
}

/**
 * A scenario's own resources: a stream prefix, a database, the platforms and helpers it starts.
 * All of them are removed when `fn` ends, whether it succeeded or threw.
 */
export interface Workspace {
  prefix: string;
  db: BenchDatabase;
  platform(options: Omit<PlatformOptions, "prefix" | "databaseUrl">): Promise<RunningPlatform>;
  helper<I = unknown>(name: string, file: string, env?: Record<string, string>): Promise<Helper<I>>;
}

export async function withWorkspace<T>(fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const prefix = newPrefix();
  const db = await createDatabase();
  const platforms: RunningPlatform[] = [];
  const helpers: Helper[] = [];
  const ws: Workspace = {
    prefix,
    db,
    async platform(options) {
      const p = await startPlatform({ ...options, prefix, databaseUrl: db.url });
      platforms.push(p);
      return p;
    },
    async helper(name, file, env) {
      const h = await startHelper(name, file, { env });
      helpers.push(h);
      return h as any;
    },
  };
  try {
    return await fn(ws);
  } finally {
    await Promise.all(helpers.map((h) => h.stop()));
    await Promise.all(platforms.map((p) => p.stop()));
    await deleteStreams(prefix).catch(() => undefined);
    await db.drop().catch(() => undefined);
  }
}

export interface ArrivalStats {
  distinct: number;
  requests: number;
  duplicates: number;
  unverified: number;
  refused: number;
  firstAt: number | null;
  lastAt: number | null;
  complete: boolean;
}

/**
 * Polls the receiver until `expected` distinct deliveries arrived on paths under `prefix`, or
 * nothing new arrived for `stallMs`, or `timeoutMs` passed. Never waits unbounded.
 */
export async function waitForArrivals(receiver: Helper, prefix: string, expected: number, { timeoutMs, stallMs = 60_000, onProgress }: { timeoutMs: number; stallMs?: number; onProgress?: (s: ArrivalStats) => void }): Promise<ArrivalStats> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let lastChange = Date.now();
  let lastReport = Date.now();
  for (;;) {
    const stats = await receiver.call<Omit<ArrivalStats, "complete">>("stats", { prefix });
    if (stats.distinct >= expected) return { ...stats, complete: true };
    if (stats.distinct !== last) { last = stats.distinct; lastChange = Date.now(); }
    if (Date.now() - lastReport > 10_000) { onProgress?.({ ...stats, complete: false }); lastReport = Date.now(); }
    if (Date.now() > deadline || Date.now() - lastChange > stallMs) return { ...stats, complete: false };
    await sleep(250);
  }
}
