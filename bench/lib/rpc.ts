import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { track } from "./procs.js";

/**
 * A tiny request/reply protocol over the Node IPC channel between the orchestrator and its
 * helper processes (receiver, load generators, ceilings). Every call has a timeout; a helper
 * exits as soon as its parent goes away, so nothing outlives a crashed orchestrator.
 */
type Call = { kind: "call"; id: number; method: string; params: unknown };
type Reply = { kind: "reply"; id: number; result?: unknown; error?: string };
type Ready = { kind: "ready"; info: unknown };

export interface Helper<Info = unknown> {
  name: string;
  pid: number;
  info: Info;
  call<T = any>(method: string, params?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the helper to exit, then kills it if it has not within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const HELPER_DIR = fileURLToPath(new URL("..", import.meta.url));

/** Starts `bench/<file>` (TypeScript, through tsx) with an IPC channel; resolves once it is ready. */
export async function startHelper<Info = unknown>(
  name: string,
  file: string,
  options: { readyTimeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Helper<Info>> {
  const child: ChildProcess = fork(`${HELPER_DIR}${file}`, [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const proc = track(name, child);
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const failAll = (why: string) => {
    for (const p of pending.values()) p.reject(new Error(`${name}: ${why}`));
    pending.clear();
  };
  child.on("exit", (code, signal) => failAll(`exited (${signal ?? code})`));

  const info = await new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${options.readyTimeoutMs ?? 30_000} ms`)), options.readyTimeoutMs ?? 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (code ${code})`));
    });
    child.on("message", (raw) => {
      const message = raw as Ready | Reply;
      if (message.kind === "ready") {
        clearTimeout(timer);
        resolve(message.info as Info);
        return;
      }
      if (message.kind === "reply") {
        const waiting = pending.get(message.id);
        pending.delete(message.id);
        if (!waiting) return;
        if (message.error !== undefined) waiting.reject(new Error(`${name}.${message.error}`));
        else waiting.resolve(message.result);
      }
    });
  }).catch(async (error) => {
    await proc.kill();
    throw error;
  });

  return {
    name,
    pid: child.pid!,
    info,
    call<T>(method: string, params?: unknown, timeoutMs = 60_000): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}.${method} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        if (!child.connected) {
          pending.get(id)?.reject(new Error("not connected"));
          return;
        }
        child.send({ kind: "call", id, method, params } satisfies Call);
      });
    },
    stop: (graceMs = 5_000) => proc.kill(graceMs),
  };
}

/** Helper side: answers calls with `handlers`, announces itself, exits with its parent. */
export function serve(handlers: Record<string, (params: any) => unknown>, info: unknown = {}, onExit?: () => Promise<void> | void): void {
  if (!process.send) throw new Error("this file is a bench helper: run it through bench/run.ts");
  let exiting = false;
  const exit = async () => {
    if (exiting) return;
    exiting = true;
    const forced = setTimeout(() => process.exit(1), 10_000);
    forced.unref();
    try {
      await onExit?.();
    } catch {
      /* leaving anyway */
    }
    process.exit(0);
  };
  process.on("disconnect", () => void exit());
  process.on("SIGTERM", () => void exit());
  process.on("SIGINT", () => void exit());
  process.on("message", (raw) => {
    const call = raw as Call;
    if (call?.kind !== "call") return;
    const handler = handlers[call.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no method ${call.method}`);
        return handler(call.params);
      })
      .then(
        (result) => process.send?.({ kind: "reply", id: call.id, result: result ?? null } satisfies Reply),
        (error: unknown) => process.send?.({ kind: "reply", id: call.id, error: `${call.method}: ${(error as Error)?.stack ?? String(error)}` } satisfies Reply),
      );
  });
  process.send({ kind: "ready", info } satisfies Ready);
}
