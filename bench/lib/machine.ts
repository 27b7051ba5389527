import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
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

/** The checked-out commit, read from .git without running git (a worktree's `.git` file names its git dir). */
function gitCommit(): string {
  return safe(() => {
    const dotGit = join(ROOT, ".git");
    const pointer = statSync(dotGit).isFile() ? /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"))?.[1]?.trim() : undefined;
    const git = pointer ? resolve(ROOT, pointer) : dotGit;
    // Branches live in the main repository's git dir (`commondir`), HEAD in the worktree's.
    const common = safe(() => resolve(git, readFileSync(join(git, "commondir"), "utf8").trim()), git);
    const head = readFileSync(join(git, "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    for (const dir of [git, common]) {
      const loose = safe(() => readFileSync(join(dir, ref), "utf8").trim(), "");
      if (loose) return loose;
    }
    const packed = readFileSync(join(common, "packed-refs"), "utf8");
    return (
      packed
        .split("\n")
        .find((line) => line.endsWith(` ${ref}`))
        ?.split(" ")[0] ?? "unknown"
    );
  }, "unknown");
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
