import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startPrivateNats, type PrivateNats } from "../support/private-nats.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const PATHS = ["/a", "/b"];
const RATE = 60;

describe("nats-server restarted under load (same store)", () => {
  let nats: PrivateNats;
  let platform: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    nats = await startPrivateNats();
    receiver = await startReceiver();
    platform = await startTestPlatform({ NATS_URL: nats.url, LOG_LEVEL: "warn" });
  });
  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    await nats?.cleanup();
  });

  it("loses nothing, delivers within 10 s of the server's return, and ingest answers 202 again at once", async () => {
    const tenant = await createTenant(platform.url, "nats restart");
    await createEndpoints(tenant, receiver, PATHS);
    const load = startLoad(tenant.client, RATE);
    await sleep(3_000);
    await nats.stop();
    await sleep(200);
    await nats.start();
    const clearedAt = Date.now();
    await sleep(12_000);
    const sent = await load.stop();
    await waitForDeliveries(sent, receiver, PATHS, 60_000);

    const t = tally(sent, receiver, PATHS, [clearedAt]);
    expectRecovered("nats-server restart", t, RATE * 10);
    await expectReadModelsAgree(tenant.client, t, PATHS.length);
  });
});
