import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/postgres.js";
import { startPrivateNats } from "./support/private-nats.js";
import { freePort, spawnPlatform, waitForHttp } from "./support/process.js";

/** `npm start` without its dependencies: one clear line, exit code 1, no stack trace. */
describe("starting without a reachable dependency", () => {
  const expectOneClearLine = async (env: Record<string, string>, names: RegExp) => {
    const run = spawnPlatform({ ZEN_STARTUP_WAIT_SECONDS: "0", ...env, ZEN_STREAM_PREFIX: "tstartup", PORT: "0" });
    expect(await run.exited).toBe(1);
    const stderr = run.stderr.join("");
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(names);
    expect(stderr).not.toMatch(/^\s+at /m);
    return run;
  };

  it("names NATS and NATS_URL when NATS cannot be reached", async () => {
    await expectOneClearLine({ NATS_URL: "nats://127.0.0.1:1" }, /NATS.*NATS_URL/);
  });

  it("names PostgreSQL and DATABASE_URL when Postgres cannot be reached", async () => {
    await expectOneClearLine({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/zen" }, /PostgreSQL.*DATABASE_URL/);
  });

  it("does not wait out credentials NATS refuses, and never prints them", async () => {
    const nats = await startPrivateNats(["--user", "zen", "--pass", "right-password"]);
    try {
      const started = Date.now();
      const url = nats.url.replace("//", "//zen:wrong-password@");
      const run = await expectOneClearLine({ NATS_URL: url, ZEN_STARTUP_WAIT_SECONDS: "20" }, /NATS.*refused the credentials.*NATS_URL/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(run.stderr.join("") + run.stdout.join("")).not.toContain("wrong-password");
    } finally {
      await nats.cleanup();
    }
  });

  it("names the bad setting when the configuration is invalid", async () => {
    await expectOneClearLine({ ZEN_ROLES: "api,nonsense" }, /ZEN_ROLES/);
  });

  it("waits ZEN_STARTUP_WAIT_SECONDS for a dependency, a warning a retry, before it gives up", async () => {
    const started = Date.now();
    const run = await expectOneClearLine({ NATS_URL: "nats://127.0.0.1:1", ZEN_STARTUP_WAIT_SECONDS: "3" }, /NATS.*NATS_URL/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    const waiting = run.stdout
      .join("")
      .split("\n")
      .filter((line) => line.includes("waiting for NATS"));
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    expect(waiting[0]).toMatch(/retrying in 1 s, giving up in \d+ s \(ZEN_STARTUP_WAIT_SECONDS\)/);
  });

  it("starts once NATS comes up within the wait (a server started beside it, as in a compose file)", async () => {
    const nats = await startPrivateNats();
    await nats.stop();
    const database = await createTestDatabase();
    const port = await freePort();
    const run = spawnPlatform({ NATS_URL: nats.url, DATABASE_URL: database.url, ZEN_ROLES: "api", PORT: String(port), ZEN_STARTUP_WAIT_SECONDS: "20" });
    try {
      await sleep(2_000);
      expect(run.child.exitCode).toBeNull();
      await nats.start();
      await waitForHttp(`http://127.0.0.1:${port}/health`, 15_000);
      expect(run.stdout.join("")).toMatch(/waiting for NATS/);
    } finally {
      run.child.kill("SIGTERM");
      await run.exited;
      await nats.cleanup();
      await database.drop();
    }
  });
});
