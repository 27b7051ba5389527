import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { track, type TrackedProcess } from "./procs.js";
import { ADMIN_TOKEN, NATS_URL, ROOT, sleep } from "./env.js";

/** Options shared by every platform the bench starts (set once by run.ts). */
export const platformDefaults = { cpuProf: false, profileDir: join(ROOT, "bench", "profiles") };

export interface PlatformOptions {
  name: string;
  prefix: string;
  databaseUrl: string;
  /** `ZEN_ROLES` (default: every role but the replayer, in one process); `null`: unset, so `npm start`'s supervised processes run. */
  roles?: string | null;
  env?: Record<string, string>;
}

export interface RunningPlatform {
  name: string;
  pid: number;
  url: string;
  process: TrackedProcess;
  /** The last lines the platform wrote on stderr/stdout (warnings and errors at LOG_LEVEL=warn). */
  output(): string;
  /** SIGTERM (a graceful drain; writes the CPU profile when profiling), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts the compiled platform (`node dist/services/main.js`) and waits until it is up. */
export async function startPlatform(options: PlatformOptions): Promise<RunningPlatform> {
  const port = await freePort();
  const roles = options.roles === undefined ? "api,router,dispatcher,projector" : options.roles;
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    PORT: String(port),
    HOST: "127.0.0.1",
    NATS_URL,
    DATABASE_URL: options.databaseUrl,
    ZEN_STREAM_PREFIX: options.prefix,
    ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
    ZEN_ALLOW_PRIVATE_TARGETS: "true",
    ...(roles === null ? {} : { ZEN_ROLES: roles }),
    LOG_LEVEL: "warn",
    NODE_ENV: "development",
    ...options.env,
  };
  const nodeArgs = platformDefaults.cpuProf
    ? [
        "--cpu-prof",
        `--cpu-prof-dir=${platformDefaults.profileDir}`,
        // A supervisor's children inherit these flags: with Node's default names (pid in them) each writes its own file.
        ...(roles === null ? [] : [`--cpu-prof-name=${options.name}-${Date.now()}.cpuprofile`]),
      ]
    : [];
  const child = spawn(process.execPath, [...nodeArgs, "dist/services/main.js"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const tracked = track(`platform:${options.name}`, child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const platform: RunningPlatform = {
    name: options.name,
    pid: child.pid!,
    url,
    process: tracked,
    output: () => lines.slice(-30).join("\n"),
    stop: (graceMs = 30_000) => tracked.kill(graceMs),
  };
  try {
    if (roles === null || roles.split(",").includes("api")) await waitForHealth(url, tracked, 60_000);
    else await waitAlive(tracked, 3_000);
  } catch (error) {
    await tracked.kill(2_000);
    throw new Error(`platform ${options.name} did not start: ${(error as Error).message}\n${platform.output()}`);
  }
  return platform;
}

async function waitForHealth(url: string, tracked: TrackedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void tracked.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(exited ? "it exited" : `no answer from ${url}/health within ${timeoutMs} ms`);
}

/** A role without http: alive after `ms` is as good as started (its progress is measured elsewhere). */
async function waitAlive(tracked: TrackedProcess, ms: number): Promise<void> {
  const died = await Promise.race([tracked.exited.then(() => true), sleep(ms).then(() => false)]);
  if (died) throw new Error("it exited");
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (null once it is gone). */
export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the max and every sample. */
export function sampleRss(pid: number, everyMs = 1_000) {
  const samples: Array<{ t: number; rss: number }> = [];
  let max = 0;
  const take = () => {
    const rss = rssBytes(pid);
    if (rss === null) return;
    samples.push({ t: Date.now(), rss });
    if (rss > max) max = rss;
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    max: () => max,
    samples,
    /** Max RSS over samples taken at or after `since` (ms epoch). */
    maxSince: (since: number) => samples.filter((s) => s.t >= since).reduce((m, s) => Math.max(m, s.rss), 0),
    stop: () => clearInterval(timer),
  };
}
