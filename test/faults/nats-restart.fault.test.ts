import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startPrivateNats, type PrivateNats } from "../support/private-nats.js";
import { eventually, startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, explainLost, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const RATE = 150;

describe("the nats-server under load (a server of the test's own, same store)", () => {
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

  /**
   * Runs the load on a fresh tenant with two endpoints of its own (`/<key>-a`, `/<key>-b`), takes the
   * server away for `downMs` after 3 s, and checks everything once it is back.
   */
  async function scenario(name: string, key: string, downMs: number): Promise<void> {
    const PATHS = [`/${key}-a`, `/${key}-b`];
    const tenant = await createTenant(platform.url, name);
    const endpointIds = await createEndpoints(tenant, receiver, PATHS);
    const load = startLoad(tenant.client, RATE);
    await sleep(3_000);
    const startedAt = Date.now();
    await nats.stop();
    const readyMeanwhile = downMs >= 10_000 ? sleep(downMs / 2).then(() => fetch(`${platform.url}/ready`)) : undefined;
    await sleep(downMs);
    await nats.start();
    const clearedAt = Date.now();
    // `/ready` never says ready while the server is away, and says it again within 10 s of its return.
    if (readyMeanwhile) expect((await readyMeanwhile).status).toBe(503);
    await eventually(async () => (await fetch(`${platform.url}/ready`)).status === 200, 10_000, "/ready 200 after the server's return");
    await sleep(12_000 - (Date.now() - clearedAt));
    const sent = await load.stop();
    await waitForDeliveries(sent, receiver, PATHS, 60_000);

    // The fault happened: a server away for seconds refused requests meanwhile.
    if (downMs >= 5_000) expect(sent.filter((s) => s.status === 503).length).toBeGreaterThan((RATE * downMs) / 2_000);
    const t = tally(sent, receiver, PATHS, [{ startedAt, clearedAt, blocksDelivery: true }]);
    await explainLost(tenant.client, t);
    expectRecovered(name, t, RATE * 10);
    await expectReadModelsAgree(tenant.client, sent, t, endpointIds);
  }

  it("restarted (down 0.2 s, same store): loses nothing, delivers within 10 s of the server's return, and ingest answers 202 again at once", async () => {
    await scenario("nats-server restart", "restart", 200);
  });

  it("stopped for 30 s: ingest refuses what it cannot store (and delivers none of it), and all is back within 10 s of the server's return", async () => {
    await scenario("nats-server stopped for 30 s", "stopped", 30_000);
  });
});
