import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Database } from "./db.js";

/** The session-level advisory lock held by the one projector that writes the read models. */
export interface ProjectorLock {
  /** True once the lock's connection failed: the lock is gone. */
  lost(): boolean;
  /** Called once when the connection fails (at once if it already has). */
  onLost(fn: () => void): void;
  release(): Promise<void>;
}

interface LockOptions {
  pollMs: number;
  signal: AbortSignal;
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Advisory lock key pair; the migration lock uses (7365001, 1). */
  key?: readonly [number, number];
}

/**
 * Takes the projector lock on a dedicated `pg` connection outside the pool (the pool runs
 * `DISCARD ALL` on release, which would drop a session lock). While another process holds it this
 * one is a standby, retrying every `pollMs`. Returns null when `signal` aborts first.
 */
export async function acquireProjectorLock(db: Database, options: LockOptions): Promise<ProjectorLock | null> {
  const [k1, k2] = options.key ?? [7365001, 2];
  let standbyLogged = false;
  while (!options.signal.aborted) {
    const client = new pg.Client({ connectionString: db.configuration.connectionUri, keepAlive: true });
    let isLost = false;
    let listeners: Array<() => void> = [];
    const markLost = () => {
      if (isLost) return;
      isLost = true;
      for (const fn of listeners.splice(0)) fn();
    };
    client.on("error", markLost);
    client.on("end", markLost);
    try {
      await client.connect();
      while (!options.signal.aborted && !isLost) {
        const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [k1, k2]);
        if (rows[0]?.ok) {
          options.logger.info({ lockKey: [k1, k2] }, "projector: lock acquired, projecting");
          return {
            lost: () => isLost,
            onLost: (fn) => (isLost ? fn() : listeners.push(fn)),
            release: async () => {
              listeners = [];
              await client.end().catch(() => undefined);
            },
          };
        }
        if (!standbyLogged) options.logger.info({ lockKey: [k1, k2] }, "projector: another process holds the lock, standing by");
        standbyLogged = true;
        await sleep(options.pollMs, undefined, { signal: options.signal }).catch(() => undefined);
      }
    } catch (error) {
      options.logger.warn({ err: error }, "projector: lock connection failed, retrying");
      await sleep(options.pollMs, undefined, { signal: options.signal }).catch(() => undefined);
    }
    await client.end().catch(() => undefined);
  }
  return null;
}
