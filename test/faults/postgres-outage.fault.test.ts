import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startPrivateNats, type PrivateNats } from "../support/private-nats.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, explainLost, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const PATHS = ["/pg-a", "/pg-b"];
const RATE = 60;

describe("PostgreSQL stopped for 30 s under load (a cluster of the test's own)", () => {
  let postgres: PrivatePostgres;
  let nats: PrivateNats;
  let platform: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    nats = await startPrivateNats();
    postgres = await startPrivatePostgres();
    receiver = await startReceiver();
    platform = await startTestPlatform({ NATS_URL: nats.url, DATABASE_URL: postgres.url, LOG_LEVEL: "warn" });
  });
  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    await nats?.cleanup();
    await postgres?.cleanup();
  });

  it("ingest keeps answering 202 and deliveries flow (the log is the source of truth), reads answer 503, and the read models catch up after", async () => {
    const tenant = await createTenant(platform.url, "postgres outage");
    const endpointIds = await createEndpoints(tenant, receiver, PATHS);
    const load = startLoad(tenant.client, RATE);
    await sleep(3_000);
    const startedAt = Date.now();
    await postgres.stop();
    await sleep(5_000);
    const read = await tenant.client("GET", "/v1/webhooks/deliveries?limit=1");
    expect(read.status).toBe(503);
    expect(read.body.error.code).toBe("dependency_unavailable");
    await sleep(25_000);
    await postgres.start();
    const clearedAt = Date.now();
    await sleep(10_000);
    const sent = await load.stop();
    await waitForDeliveries(sent, receiver, PATHS, 60_000);

    // Not one request refused, during the outage either.
    expect(sent.filter((s) => s.status !== 202).map((s) => s.status)).toEqual([]);
    const t = tally(sent, receiver, PATHS, [{ startedAt, clearedAt, blocksDelivery: false }]);
    await explainLost(tenant.client, t);
    expectRecovered("postgres stopped for 30 s", t, RATE * 40);
    await expectReadModelsAgree(tenant.client, sent, t, endpointIds);
  });
});
