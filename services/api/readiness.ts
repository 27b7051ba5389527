import type { NatsConnection } from "@nats-io/transport-node";
import type { ReadinessChecks, ReadinessProbes } from "./deps.js";

export { readinessStatus } from "../shared/ops-http.js";
import type { ReadModels } from "./read-models.js";

const CHECK_TIMEOUT_MS = 2_000;
/** Read models further behind the stream than this make `/ready` say `degraded`. */
export const DEFAULT_MAX_LAG_EVENTS = 10_000;
/** Read models behind and not advancing for this long make `/ready` say `degraded`. */
export const DEFAULT_STALL_MS = 60_000;

/** Resolves true when `probe` settles in time, false on an error or a timeout. */
async function answers(probe: () => Promise<unknown>): Promise<boolean> {
  const answered = await settled(() => probe().then(() => true as const));
  return answered === true;
}

/** The probe's value, or undefined on an error or a timeout. */
async function settled<T>(probe: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([probe().catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LagWatchOptions {
  maxLagEvents?: number;
  stallMs?: number;
  now?: () => number;
}

/**
 * Whether the read models keep up: false when they are more than `maxLagEvents` behind the stream,
 * or behind at all with a checkpoint that has not moved for `stallMs`.
 */
export function createLagWatch({ maxLagEvents = DEFAULT_MAX_LAG_EVENTS, stallMs = DEFAULT_STALL_MS, now = Date.now }: LagWatchOptions = {}) {
  let seen: { checkpoint: number; since: number } | undefined;
  return (streamSeq: number, checkpoint: number): boolean => {
    const at = now();
    if (!seen || seen.checkpoint !== checkpoint) seen = { checkpoint, since: at };
    const lag = streamSeq - checkpoint;
    // Caught up: a stall can only start from here, however long the stream was quiet before.
    if (lag <= 0) {
      seen = { checkpoint, since: at };
      return true;
    }
    return lag <= maxLagEvents && at - seen.since <= stallMs;
  };
}

export interface ReadinessDeps {
  nc: NatsConnection | undefined;
  /** The read-model database; absent in a process without one, which then has no `postgres` check. */
  readModels?: Pick<ReadModels, "ping">;
  /** The process's consumers and read-model progress; without them only NATS and Postgres are checked. */
  probes?: ReadinessProbes;
  lag?: LagWatchOptions;
}

/**
 * The default readiness: a NATS round trip, a `SELECT 1` (with `readModels`), and, when `probes` are
 * given, the process's loops running and its durable consumers' existence, and the read models'
 * lag (reported, never failing the process).
 */
export function createReadiness({ nc, readModels, probes, lag }: ReadinessDeps) {
  const keepsUp = createLagWatch(lag);
  return async (): Promise<ReadinessChecks> => {
    const progress = probes?.readModelProgress;
    const [nats, postgres, consumers, position] = await Promise.all([
      nc && !nc.isClosed() ? answers(() => nc.flush()) : Promise.resolve(false),
      readModels ? answers(() => readModels.ping()) : Promise.resolve(undefined),
      // False when the probe says so (a loop is down), as on an error or a timeout (a consumer is gone).
      probes ? settled(() => probes.consumersBound()).then((bound) => bound === true) : Promise.resolve(undefined),
      progress ? settled(progress) : Promise.resolve(undefined),
    ]);
    const checks: ReadinessChecks = { nats };
    if (postgres !== undefined) checks.postgres = postgres;
    if (consumers !== undefined) checks.consumers = consumers;
    if (progress) checks.readModels = position !== undefined && keepsUp(position.streamSeq, position.checkpoint);
    return checks;
  };
}
