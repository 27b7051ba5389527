import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { ROOT, databaseUrl } from "./env.js";
import { natsAdmin, pgClient } from "./resources.js";

/** Facts about the machine and the versions a result was measured with. */
export async function machineFacts() {
  const cpuinfo = safe(() => readFileSync("/proc/cpuinfo", "utf8"), "");
  const { nc } = await natsAdmin();
  const client = await pgClient(databaseUrl("postgres"));
  const postgres = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version ?? "unknown";
  await client.end();
  return {
    cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: nc.info?.version ?? "unknown",
    postgres,
    gitCommit: gitCommit(),
  };
}

/** The checked-out commit, read from .git without running git. */
function gitCommit(): string {
  return safe(() => {
    const git = join(ROOT, ".git");
    const head = readFileSync(join(git, "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    try {
      return readFileSync(join(git, ref), "utf8").trim();
    } catch {
      const packed = readFileSync(join(git, "packed-refs"), "utf8");
      return packed.split("\n").find((line) => line.endsWith(` ${ref}`))?.split(" ")[0] ?? "unknown";
    }
  }, "unknown");
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
