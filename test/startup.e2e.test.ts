import { describe, expect, it } from "vitest";
import { spawnPlatform } from "./support/process.js";

/** `npm start` without its dependencies: one clear line, exit code 1, no stack trace. */
describe("starting without a reachable dependency", () => {
  const expectOneClearLine = async (env: Record<string, string>, names: RegExp) => {
    const run = spawnPlatform({ ...env, ZEN_STREAM_PREFIX: "tstartup", PORT: "0" });
    expect(await run.exited).toBe(1);
    const stderr = run.stderr.join("");
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(names);
    expect(stderr).not.toMatch(/^\s+at /m);
  };

  it("names NATS and NATS_URL when NATS cannot be reached", async () => {
    await expectOneClearLine({ NATS_URL: "nats://127.0.0.1:1" }, /NATS.*NATS_URL/);
  });

  it("names PostgreSQL and DATABASE_URL when Postgres cannot be reached", async () => {
    await expectOneClearLine({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/zen" }, /PostgreSQL.*DATABASE_URL/);
  });

  it("names the bad setting when the configuration is invalid", async () => {
    await expectOneClearLine({ ZEN_ROLES: "api,nonsense" }, /ZEN_ROLES/);
  });
});
