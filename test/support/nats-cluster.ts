import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NATS_SERVER_BIN } from "./private-nats.js";
import { freePort } from "./process.js";

export interface ClusterNode {
  name: string;
  url: string;
  /** Stops the node (SIGTERM, or SIGKILL with `{ kill: true }`) and waits for it to exit. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again with the same ports and store; resolves once it accepts clients. */
  start(): Promise<void>;
}

export interface NatsCluster {
  /** Every node's client URL, comma-separated, as `NATS_URL` takes them. */
  url: string;
  nodes: ClusterNode[];
  node(name: string): ClusterNode;
  /** Waits until JetStream answers through `url` (a meta leader is elected). */
  jetStreamReady(timeoutMs?: number): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Three nats-server processes on loopback forming one JetStream cluster, each with its own client
 * and route ports and store directory, so a test can kill and restart nodes.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), "zen-nats-cluster-"));
  const specs = await Promise.all(
    Array.from({ length: size }, async (_, i) => ({ name: `n${i + 1}`, port: await freePort(), routePort: await freePort(), store: join(dir, `n${i + 1}`) })),
  );
  const routes = specs.map((spec) => `nats://127.0.0.1:${spec.routePort}`).join(",");

  const nodes = specs.map((spec): ClusterNode => {
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    const start = async () => {
      const args = ["-a", "127.0.0.1", "-p", String(spec.port), "-js", "-sd", spec.store, "-n", spec.name, "--cluster_name", "zen-test"];
      const server = spawn(NATS_SERVER_BIN, [...args, "--cluster", `nats://127.0.0.1:${spec.routePort}`, "--routes", routes], { stdio: "ignore" });
      child = server;
      exited = new Promise((resolve) => server.once("exit", () => resolve()));
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (server.exitCode !== null) throw new Error(`nats-server ${spec.name} exited (${server.exitCode})`);
        const nc = await connect({ servers: `nats://127.0.0.1:${spec.port}`, reconnect: false, timeout: 500 }).catch(() => undefined);
        if (nc) {
          await nc.close();
          return;
        }
        if (Date.now() > deadline) throw new Error(`nats-server ${spec.name} did not accept clients within 15 s`);
        await sleep(50);
      }
    };
    return {
      name: spec.name,
      url: `nats://127.0.0.1:${spec.port}`,
      start,
      async stop(options = {}) {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        child.kill(options.kill ? "SIGKILL" : "SIGTERM");
        await exited;
      },
    };
  });
  await Promise.all(nodes.map((node) => node.start()));
  const url = nodes.map((node) => node.url).join(",");

  const cluster: NatsCluster = {
    url,
    nodes,
    node: (name) => nodes.find((node) => node.name === name)!,
    async jetStreamReady(timeoutMs = 30_000) {
      const nc = await connect({ servers: url.split(",") });
      try {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          try {
            await (await jetstreamManager(nc, { timeout: 1_000 })).getAccountInfo();
            return;
          } catch (error) {
            if (Date.now() > deadline) throw error;
            await sleep(250);
          }
        }
      } finally {
        await nc.close();
      }
    },
    async cleanup() {
      await Promise.all(nodes.map((node) => node.stop({ kill: true })));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.jetStreamReady();
  return cluster;
}
