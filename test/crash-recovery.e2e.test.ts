import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTestStream, uniquePrefix } from "./support/nats.js";
import { ADMIN_TOKEN, apiClient, platformProcessEnv } from "./support/platform.js";
import { createTestDatabase } from "./support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

const EVENTS = 200;

describe("a SIGKILL while deliveries are in flight loses no accepted event", () => {
  let receiver: Receiver;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = uniquePrefix();
  let env: Record<string, string>;
  let running: PlatformProcess | undefined;

  beforeAll(async () => {
    receiver = await startReceiver();
    database = await createTestDatabase();
    const port = await freePort();
    env = {
      ...platformProcessEnv(database.url, prefix),
      PORT: String(port),
      // One process, so SIGKILL is a crash of every role at once (not a supervisor's drained children).
      ZEN_ROLES: "api,router,dispatcher,projector,replayer",
      // Slow enough that the kill lands while most deliveries are still to come.
      ZEN_DELIVERY_CONCURRENCY_PER_ENDPOINT: "4",
    };
  });
  afterAll(async () => {
    running?.child.kill("SIGKILL");
    await receiver?.close();
    await deleteTestStream(prefix);
    await database?.drop();
  });

  const start = async () => {
    running = spawnPlatform(env);
    await waitForHttp(`http://127.0.0.1:${env.PORT}/health`, 30_000);
    return running;
  };

  it("delivers every accepted event after a restart, and then shuts down cleanly on SIGTERM", async () => {
    const first = await start();
    const base = `http://127.0.0.1:${env.PORT}`;
    const admin = apiClient(base, { token: ADMIN_TOKEN });
    const tenantId = (await admin("POST", "/v1/tenants", { name: "Crash" })).body.id as string;
    const key = (await admin("POST", `/v1/tenants/${tenantId}/api-keys`, { name: "k", scopes: ["ingest", "webhooks:write", "deliveries:read"] })).body.key as string;
    const tenant = apiClient(base, { token: key, tenantId });
    receiver.behave("/slow", { status: 200, delayMs: 100 });
    const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url("/slow"), eventTypes: ["*"] });
    receiver.setSecret("/slow", endpoint.body.secret);

    const accepted: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const response = await tenant("POST", "/v1/webhooks/ingest", { eventType: "crash.test", payload: { i } });
      expect(response.status).toBe(202);
      accepted.push(response.body.messageId);
    }
    await eventually(() => receiver.received.length >= 10, 30_000, "some deliveries to start");
    first.child.kill("SIGKILL");
    await first.exited;
    const deliveredBeforeCrash = new Set(receiver.received.map((r) => r.webhookId)).size;
    expect(deliveredBeforeCrash).toBeLessThan(EVENTS);

    const second = await start();
    await eventually(() => accepted.every((id) => receiver.received.some((r) => r.webhookId === id)), 90_000, "every accepted event to be delivered");
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    await eventually(
      async () => {
        const page = await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=500");
        return page.body.data?.length === EVENTS;
      },
      90_000,
      "the read model to show every delivery succeeded (in-flight ones after the ack wait)",
    );

    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    running = undefined;
  });
});
