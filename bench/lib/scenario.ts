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
  /** `--gate`'s floor (a fraction of ceiling.ingest), or null/absent without a gate. */
  gateFloor?: number | null;
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
  targets?(
    f: (name: string, agg?: "median" | "max" | "min") => number | null,
    ceiling: (name: string) => number | null,
    ctx: { earlier: RunContext["earlier"] },
  ): Target[];
  /** Figures shown in the table, in order. */
  show: Array<[figure: string, label: string]>;
}

export function target(name: string, value: number | null, op: Target["op"], limit: number | null): Target {
  const met =
    value === null || limit === null || !Number.isFinite(value) || !Number.isFinite(limit)
      ? null
      : op === ">="
        ? value >= limit
        : op === "<="
          ? value <= limit
          : value === limit;
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
  } catch (error) {
    // What the platforms said (LOG_LEVEL=warn: warnings and errors only) is the first clue.
    for (const p of platforms) {
      const out = p.output();
      if (out) console.error(`--- last output of platform ${p.name} ---\n${out}\n---`);
    }
    throw error;
  } finally {
    await Promise.all(helpers.map((h) => h.stop()));
    await Promise.all(platforms.map((p) => p.stop()));
    await deleteStreams(prefix).catch(() => undefined);
    await db.drop().catch(() => undefined);
  }
}

export interface ArrivalStats {
  /** Distinct deliveries on the paths under `prefix` (may include a few beyond `ids`: requests a load generator abandoned at its end). */
  distinct: number;
  requests: number;
  duplicates: number;
  unverified: number;
  refused: number;
  firstAt: number | null;
  lastAt: number | null;
  /** Of the expected (path, id) pairs, how many never arrived. */
  missing: number;
  complete: boolean;
  /** Why the wait ended: everything arrived, nothing new arrived for `stallMs`, or `timeoutMs` passed. */
  ended: "complete" | "stalled" | "timeout";
  /** How long the wait lasted. */
  waitedMs: number;
}

let watchCounter = 0;

/**
 * Waits until every accepted id arrived on every one of `paths` (checked by the receiver), or
 * nothing new arrived for `stallMs`, or `timeoutMs` passed. Never waits unbounded.
 */
export async function waitForDeliveries(
  receiver: Helper,
  { prefix, paths, ids }: { prefix: string; paths: string[]; ids: string[] },
  { timeoutMs, stallMs = 60_000, onProgress }: { timeoutMs: number; stallMs?: number; onProgress?: (remaining: number, stats: ArrivalStats) => void },
): Promise<ArrivalStats> {
  const key = `w${watchCounter++}`;
  await receiver.call("watch", { key, paths, ids }, 120_000);
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last = -1;
  let lastChange = Date.now();
  let lastReport = Date.now();
  try {
    for (;;) {
      const { remaining } = await receiver.call<{ remaining: number }>("remaining", { key }, 60_000);
      const counts = await receiver.call<Omit<ArrivalStats, "complete" | "missing" | "ended" | "waitedMs">>("stats", { prefix });
      const stats = (ended: ArrivalStats["ended"]): ArrivalStats => ({ ...counts, missing: remaining, complete: remaining === 0, ended, waitedMs: Date.now() - started });
      if (remaining === 0) return stats("complete");
      if (remaining !== last) {
        last = remaining;
        lastChange = Date.now();
      }
      if (Date.now() - lastReport > 10_000) {
        onProgress?.(remaining, stats("complete"));
        lastReport = Date.now();
      }
      if (Date.now() - lastChange > stallMs) return stats("stalled");
      if (Date.now() > deadline) return stats("timeout");
      await sleep(250);
    }
  } finally {
    await receiver.call("remaining", { key, drop: true }).catch(() => undefined);
  }
}

/**
 * `stats` when every id arrived; otherwise an error naming how the drain ended (stalled: nothing new
 * for `stallMs`; or past its deadline) and how much is missing, so a drain that stops making
 * progress fails the scenario instead of reporting a figure.
 */
export function requireDrained(what: string, stats: ArrivalStats, expected: number, { stallMs, reason }: { stallMs: number; reason?: string }): ArrivalStats {
  if (stats.complete) return stats;
  const why = stats.ended === "stalled" ? `stalled: nothing new arrived for ${stallMs / 1000} s` : `did not finish in time${reason ? ` (${reason})` : ""}`;
  throw new Error(
    `${what}: the drain ${why}; ${stats.missing} of ${expected} accepted had not arrived when the wait ended after ${(stats.waitedMs / 1000).toFixed(1)} s`,
  );
}

/** Waits until at least `expected` deliveries arrived under `prefix` and none arrived for `quietMs` (warm-ups, whose ids are not kept). */
export async function waitForQuiet(
  receiver: Helper,
  prefix: string,
  expected: number,
  { timeoutMs, quietMs = 1_000 }: { timeoutMs: number; quietMs?: number },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const { distinct } = await receiver.call<{ distinct: number }>("stats", { prefix });
    if (distinct !== last) {
      last = distinct;
      since = Date.now();
    }
    if (distinct >= expected && Date.now() - since >= quietMs) return;
    await sleep(200);
  }
  throw new Error(`warm-up: ${last} of ${expected} deliveries arrived under ${prefix} within ${timeoutMs} ms`);
}
