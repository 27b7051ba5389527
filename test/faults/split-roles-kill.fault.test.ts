import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, it } from "vitest";
import { deleteTestStream, TEST_NATS_URL, uniquePrefix } from "../support/nats.js";
import { ADMIN_TOKEN } from "../support/platform.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "../support/process.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const PATHS = ["/a", "/b"];
const RATE = 150;
const ROLES = ["api", "router", "dispatcher", "projector", "replayer"] as const;
type Role = (typeof ROLES)[number];

/**
 * Every role in a process of its own, as a scaled-out deployment runs them; kill -9 of the
 * dispatcher and then of the router under load, each restarted 3 s later.
 */
describe("split roles: kill -9 of the dispatcher, then of the router, each restarted after 3 s", () => {
  const prefix = uniquePrefix();
  let database: TestDatabase;
  let receiver: Receiver;
  const processes = new Map<Role, PlatformProcess>();
  const ports = new Map<Role, number>();
  let common: Record<string, string>;

  const readyUrl = (role: Role) => `http://127.0.0.1:${ports.get(role)}/ready`;

  async function start(role: Role): Promise<void> {
    const port = ports.get(role)!;
    const env = { ...common, ZEN_ROLES: role, ...(role === "api" ? { PORT: String(port) } : { ZEN_OPS_PORT: String(port), PORT: String(await freePort()) }) };
    processes.set(role, spawnPlatform(env));
    await waitForHttp(readyUrl(role), 60_000);
  }

  async function kill(role: Role): Promise<void> {
    const running = processes.get(role)!;
    running.child.kill("SIGKILL");
    await running.exited;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    receiver = await startReceiver();
    common = {
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: database.url,
      ZEN_STREAM_PREFIX: prefix,
      ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
      ZEN_ALLOW_PRIVATE_TARGETS: "true",
      LOG_LEVEL: "warn",
    };
    for (const role of ROLES) ports.set(role, await freePort());
    await start("api");
    await Promise.all(ROLES.filter((role) => role !== "api").map(start));
  });
  afterAll(async () => {
    for (const running of processes.values()) running.child.kill("SIGKILL");
    await Promise.all([...processes.values()].map((running) => running.exited));
    await receiver?.close();
    await deleteTestStream(prefix);
    await database?.drop();
  });

  it("loses nothing, and every delivery arrives within 10 s of the last restart", async () => {
    const base = `http://127.0.0.1:${ports.get("api")}`;
    const tenant = await createTenant(base, "split kill");
    await createEndpoints(tenant, receiver, PATHS);
    const load = startLoad(tenant.client, RATE);
    await sleep(4_000);
    await kill("dispatcher");
    await sleep(3_000);
    await start("dispatcher");
    await sleep(3_000);
    await kill("router");
    await sleep(3_000);
    await start("router");
    const clearedAt = Date.now();
    await sleep(5_000);
    const sent = await load.stop();
    await waitForDeliveries(sent, receiver, PATHS, 90_000);

    expectRecovered("split roles, kill -9 dispatcher then router", tally(sent, receiver, PATHS, clearedAt), RATE * 15);
  });
});
