import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./process.js";

const run = promisify(execFile);

/** Debian's PostgreSQL binaries (`PG_BIN_DIR` overrides), the newest installed. */
function binDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error("no PostgreSQL binaries under /usr/lib/postgresql: set PG_BIN_DIR");
  return join(root, versions[0]!, "bin");
}

export interface PrivatePostgres {
  /** The URL of its database `zen_webhooks` (the platform creates it). */
  url: string;
  /** Stops the server (fast shutdown: sessions are ended) and waits for it. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  cleanup(): Promise<void>;
}

/**
 * A PostgreSQL cluster of the test's own (`initdb` in a temporary directory, its own port, trust
 * auth on loopback), so a test can stop and restart it without touching the machine's server.
 * PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "zen-pg-"));
  const data = join(dir, "data");
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const postgres = await run("id", ["-u", "postgres"]).then(({ stdout }) => Number(stdout.trim()));
    const group = await run("id", ["-g", "postgres"]).then(({ stdout }) => Number(stdout.trim()));
    chownSync(dir, postgres, group);
  }
  const pg = (tool: string, args: string[]) => (asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, tool), ...args]) : run(join(bin, tool), args));

  await pg("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  const start = async () => {
    await pg("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  };
  const stop = async () => {
    await pg("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]).catch(() => undefined);
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/zen_webhooks`,
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
