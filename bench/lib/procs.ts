import type { ChildProcess } from "node:child_process";

/**
 * Every process the bench starts is registered here, so `killAll` can end them (SIGTERM, then
 * SIGKILL after a grace period) on success, failure or Ctrl-C alike. Only our own pids are
 * signalled.
 */
export interface TrackedProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  kill(graceMs?: number): Promise<void>;
}

const live = new Set<TrackedProcess>();

export function track(name: string, child: ChildProcess): TrackedProcess {
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  const tracked: TrackedProcess = {
    name,
    child,
    exited,
    async kill(graceMs = 5_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      live.delete(tracked);
    },
  };
  live.add(tracked);
  void exited.then(() => live.delete(tracked));
  return tracked;
}

/** Ends every process still running, in parallel, within about `graceMs` plus a second. */
export async function killAll(graceMs = 5_000): Promise<void> {
  await Promise.all([...live].map((p) => p.kill(graceMs)));
}

export const liveProcesses = (): string[] => [...live].map((p) => `${p.name} (pid ${p.child.pid})`);
