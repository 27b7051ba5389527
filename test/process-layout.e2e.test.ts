import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTestStream, TEST_NATS_URL, uniquePrefix } from "./support/nats.js";
import { ADMIN_TOKEN, apiClient } from "./support/platform.js";
import { createTestDatabase } from "./support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

/** The pids the supervisor logged for each group of roles. */
function childPids(stdout: string[]): Record<string, number> {
  for (const line of stdout.join("").split("\n")) {
    if (!line.includes("zen-webhooks processes started")) continue;
    const { processes } = JSON.parse(line) as { processes: Array<{ roles: string[]; pid: number }> };
    return Object.fromEntries(processes.map(({ roles, pid }) => [roles.join(","), pid]));
  }
  return {};
}

/** A process's scheduling niceness, from /proc/<pid>/stat (the 19th field). */
const niceness = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[16]);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("npm start without ZEN_ROLES: the supervised process layout", () => {
  let receiver: Receiver;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = uniquePrefix();
  let platform: PlatformProcess | undefined;
  let base: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    database = await createTestDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    platform = spawnPlatform({
      PORT: String(port),
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: database.url,
      ZEN_STREAM_PREFIX: prefix,
      ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
      ZEN_ALLOW_PRIVATE_TARGETS: "true",
      LOG_LEVEL: "info",
    });
    await waitForHttp(`${base}/health`, 60_000);
    await eventually(() => Object.keys(childPids(platform!.stdout)).length > 0, 60_000, "every process to start");
  }, 90_000);
  afterAll(async () => {
    platform?.child.kill("SIGKILL");
    for (const pid of Object.values(childPids(platform?.stdout ?? []))) if (alive(pid)) process.kill(pid, "SIGKILL");
    await receiver?.close();
    await deleteTestStream(prefix);
    await database?.drop();
  });

  it("runs the api, the workers and the projector as processes of their own, restarts one killed with SIGKILL, loses nothing, and stops them all on SIGTERM", async () => {
    const pids = childPids(platform!.stdout);
    expect(Object.keys(pids).sort()).toEqual(["api", "projector", "router,dispatcher,replayer"]);
    // The read models may lag; deliveries and ingest come first on shared cores.
    expect(niceness(pids.projector!)).toBe(10);
    expect(niceness(pids.api!)).toBe(0);

    const admin = apiClient(base, { token: ADMIN_TOKEN });
    const tenantId = (await admin("POST", "/v1/tenants", { name: "Layout" })).body.id as string;
    const key = (await admin("POST", `/v1/tenants/${tenantId}/api-keys`, { name: "k", scopes: ["ingest", "webhooks:write", "deliveries:read"] })).body.key as string;
    const tenant = apiClient(base, { token: key, tenantId });
    receiver.behave("/layout", { status: 200, delayMs: 50 });
    const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url("/layout"), eventTypes: ["*"] }, { "idempotency-key": "layout-endpoint" });
    receiver.setSecret("/layout", endpoint.body.secret);

    const accepted: string[] = [];
    for (let i = 0; i < 100; i++) {
      const response = await tenant("POST", "/v1/webhooks/ingest", { eventType: "layout.test", payload: { i } });
      expect(response.status).toBe(202);
      accepted.push(response.body.messageId);
    }
    // The workers' process dies mid-stream; the supervisor starts another in its place.
    const workers = pids["router,dispatcher,replayer"]!;
    process.kill(workers, "SIGKILL");
    await eventually(() => platform!.stdout.join("").includes("a platform process died; restarting it"), 10_000, "the supervisor to see the death");
    await eventually(() => accepted.every((id) => receiver.received.some((r) => r.webhookId === id)), 90_000, "every accepted event to be delivered");
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    await eventually(
      async () => (await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=500")).body.data?.length === accepted.length,
      60_000,
      "the projector's process to show every delivery succeeded",
    );

    platform!.child.kill("SIGTERM");
    expect(await platform!.exited).toBe(0);
    await eventually(() => Object.values(pids).every((pid) => !alive(pid)), 10_000, "every child process to stop");
  }, 240_000);
});
