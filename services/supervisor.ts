import { fork, type ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import type { Role } from "./shared/config.js";
import type { Logger } from "./shared/logger.js";

/** A child that ran this long before it died restarts after the first delay again, not the last. */
const START_GRACE_MS = 30_000;
const FIRST_RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** How long SIGTERM lets the children drain before they are killed. */
const STOP_GRACE_MS = 30_000;

/**
 * The scheduling niceness of a process that runs only the projector: read models may lag a moment
 * behind, deliveries and ingest should not wait for their catch-up on shared cores.
 */
const PROJECTOR_NICENESS = 10;

/** The message a child sends its supervisor once its roles run. */
export const STARTED_MESSAGE = "zen-webhooks:started";

/** A child exited before its roles ran: it wrote why on stderr (its one clear line). */
export class ChildStartFailed extends Error {
  override name = "ChildStartFailed";
}

interface Child {
  roles: Role[];
  env: NodeJS.ProcessEnv;
  process?: ChildProcess;
  restartDelayMs: number;
}

export interface SupervisorDeps {
  /** The script each child runs (this one: `services/main`), with ZEN_ROLES set to its group. */
  script: string;
  layout: Role[][];
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs each group of roles in a child process of its own, started one after another (the api's
 * first, so migrations and the stream are in place once), and restarts a child that dies after it
 * started. A child that cannot start (its one clear line is on stderr) stops them all: the
 * supervisor exits 1. SIGTERM drains every child; a child whose supervisor is gone stops itself.
 */
export async function supervise({ script, layout, logger, env = process.env }: SupervisorDeps): Promise<{ stop(): Promise<void> }> {
  const { ZEN_OPS_PORT: opsPort, ...base } = env;
  const ordered = [...layout].sort((a, b) => Number(b.includes("api")) - Number(a.includes("api")));
  const children: Child[] = ordered.map((roles, index) => ({
    roles,
    // Only the api answers on PORT; every other child gets an ops port of its own when asked for one.
    env: {
      ...base,
      ZEN_ROLES: roles.join(","),
      ...(opsPort !== undefined && !roles.includes("api") ? { ZEN_OPS_PORT: opsPort === "0" ? "0" : String(Number(opsPort) + index) } : {}),
    },
    restartDelayMs: FIRST_RESTART_DELAY_MS,
  }));
  let stopping = false;

  const start = (child: Child): Promise<void> =>
    new Promise((resolve, reject) => {
      const startedAt = Date.now();
      let started = false;
      const proc = fork(script, [], { env: child.env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
      child.process = proc;
      if (proc.pid !== undefined && child.roles.every((role) => role === "projector")) setPriority(proc.pid, PROJECTOR_NICENESS);
      proc.on("message", (message) => {
        if (message !== STARTED_MESSAGE) return;
        started = true;
        resolve();
      });
      proc.on("exit", (code, signal) => {
        child.process = undefined;
        if (stopping) return;
        if (!started) return reject(new ChildStartFailed(`the ${child.roles.join(",")} process exited (${signal ?? code}) before it started`));
        logger.error({ roles: child.roles, code, signal }, "a platform process died; restarting it");
        if (Date.now() - startedAt > START_GRACE_MS) child.restartDelayMs = FIRST_RESTART_DELAY_MS;
        restartLater(child);
      });
    });

  /** Starts the child again after its backoff, and again (the backoff doubled) for as long as that fails. */
  const restartLater = (child: Child): void => {
    const delay = child.restartDelayMs;
    child.restartDelayMs = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
    setTimeout(() => {
      if (stopping) return;
      start(child).catch((error: unknown) => {
        logger.error({ err: error, roles: child.roles, retryInMs: child.restartDelayMs }, "could not restart a platform process; trying again");
        restartLater(child);
      });
    }, delay);
  };

  const stop = async () => {
    stopping = true;
    const running = children.flatMap((child) => (child.process ? [child.process] : []));
    await Promise.all(
      running.map(
        (proc) =>
          new Promise<void>((resolve) => {
            const forced = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
            proc.once("exit", () => {
              clearTimeout(forced);
              resolve();
            });
            proc.kill("SIGTERM");
          }),
      ),
    );
  };

  try {
    for (const child of children) await start(child);
  } catch (error) {
    await stop();
    throw error;
  }
  logger.info({ processes: children.map((child) => ({ roles: child.roles, pid: child.process?.pid })) }, "zen-webhooks processes started");
  return { stop };
}
