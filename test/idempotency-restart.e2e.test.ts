import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteTestStream, TEST_NATS_URL, uniquePrefix } from "./support/nats.js";
import { ADMIN_TOKEN } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { createTestDatabase } from "./support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";

describe("an Idempotency-Key outlives the process that first answered it", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = uniquePrefix();
  let env: Record<string, string>;
  let running: PlatformProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = {
      PORT: String(await freePort()),
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: database.url,
      ZEN_STREAM_PREFIX: prefix,
      ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: "warn",
    };
  });
  afterAll(async () => {
    running?.child.kill("SIGKILL");
    await deleteTestStream(prefix);
    await database?.drop();
  });

  const start = async () => {
    running = spawnPlatform(env);
    await waitForHttp(`http://127.0.0.1:${env.PORT}/health`, 30_000);
  };
  const stop = async () => {
    running!.child.kill("SIGTERM");
    expect(await running!.exited).toBe(0);
    running = undefined;
  };

  it("replays the first response after a restart, refuses another body, and executed once", async () => {
    await start();
    const base = `http://127.0.0.1:${env.PORT}`;
    const tenant = (await createTenant(base, "Restart", ["webhooks:read", "webhooks:write"])).client;
    const body = { url: "https://example.com/hooks", eventTypes: ["*"] };
    const headers = { "idempotency-key": "create-endpoint-once" };
    const first = await tenant("POST", "/v1/webhooks/registry", body, headers);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();

    await stop();
    await start();

    const again = await tenant("POST", "/v1/webhooks/registry", body, headers);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await tenant("POST", "/v1/webhooks/registry", { ...body, url: "https://example.com/other" }, headers);
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("idempotency_conflict");

    const list = await tenant("GET", "/v1/webhooks/registry", undefined, { "x-zen-min-seq": first.headers.get("x-zen-seq")! });
    expect(list.body.data.map((endpoint: { id: string }) => endpoint.id)).toEqual([first.body.id]);
    await stop();
  });
});
