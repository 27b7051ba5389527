import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./process.js";

/** The nats-server binary: `NATS_SERVER_BIN`, else Debian's, else whatever `PATH` finds. */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");

export interface PrivateNats {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, or SIGKILL with `{ kill: true }`) and waits for it to exit. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port and store; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its store. */
  cleanup(): Promise<void>;
}

/**
 * A nats-server of the test's own, with JetStream on its own port and store directory, so a test can
 * stop, kill and restart it without touching the machine's server; `extraArgs` go to its command line.
 */
export async function startPrivateNats(extraArgs: string[] = []): Promise<PrivateNats> {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), "zen-nats-"));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    const server = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store, ...extraArgs], { stdio: "ignore" });
    child = server;
    let failed: Error | undefined;
    server.once("error", (error) => (failed = error));
    exited = new Promise((resolve) => server.once("exit", () => resolve()));
    const deadline = Date.now() + 15_000;
    while (!(await accepts(port))) {
      if (failed) throw new Error(`cannot run ${NATS_SERVER_BIN}: ${failed.message}`);
      if (server.exitCode !== null || server.signalCode !== null) throw new Error(`nats-server exited (${server.exitCode ?? server.signalCode}, port ${port})`);
      if (Date.now() > deadline) throw new Error(`nats-server did not accept on port ${port} within 15 s`);
      await sleep(25);
    }
  }

  async function stop(options: { kill?: boolean } = {}): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(options.kill ? "SIGKILL" : "SIGTERM");
    await exited;
  }

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async cleanup() {
      await stop({ kill: true });
      rmSync(store, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
