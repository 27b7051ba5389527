import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startPrivateNats, type PrivateNats } from "../support/private-nats.js";
import { startReceiver, type Behaviour, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, explainLost, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const RATE = 30;
const FAULT_MS = 20_000;
/** Retries every 0.5–2 s and 50 attempts: a 20 s outage spends a dozen, so nothing goes dead. */
const RETRY = { retryPolicy: { maxAttempts: 50, initialDelayMs: 500, maxDelayMs: 2_000 } };

/**
 * Receivers that fail for 20 s, then answer 200 again, under load: two tenants at once, one whose
 * endpoints answer 503, one whose endpoints hang (each attempt times out after 2 s). Circuits
 * open after 5 failures and half-open after 2 s here (`ZEN_CIRCUIT_OPEN_MS`; the default 60 s
 * would hold deliveries back that long after the receiver is back).
 */
const FAULTS: Array<{ name: string; paths: string[]; behaviour: Behaviour; settings: Record<string, unknown> }> = [
  { name: "receiver answering 503 for 20 s", paths: ["/unavailable-a", "/unavailable-b"], behaviour: { status: 503 }, settings: RETRY },
  { name: "receiver hanging for 20 s", paths: ["/hanging-a", "/hanging-b"], behaviour: { hang: true }, settings: { ...RETRY, deliveryPolicy: { timeoutMs: 2_000 } } },
];

describe("receivers failing for 20 s under load, then answering again", () => {
  let nats: PrivateNats;
  let platform: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    nats = await startPrivateNats();
    receiver = await startReceiver();
    platform = await startTestPlatform({ NATS_URL: nats.url, LOG_LEVEL: "warn", ZEN_CIRCUIT_OPEN_MS: "2000" });
  });
  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    await nats?.cleanup();
  });

  it("loses nothing, delivers within 10 s of the receiver's return, dead-letters nothing, and the read models agree", async () => {
    const runs = await Promise.all(
      FAULTS.map(async (fault) => {
        const tenant = await createTenant(platform.url, fault.name);
        const endpointIds = await createEndpoints(tenant, receiver, fault.paths, fault.settings);
        return { fault, tenant, endpointIds, load: startLoad(tenant.client, RATE) };
      }),
    );
    await sleep(3_000);
    const startedAt = Date.now();
    for (const { fault } of runs) for (const path of fault.paths) receiver.behave(path, fault.behaviour);
    await sleep(FAULT_MS);
    for (const { fault } of runs) for (const path of fault.paths) receiver.behave(path, { status: 200 });
    const clearedAt = Date.now();
    await sleep(10_000);

    const results = await Promise.all(runs.map(async (run) => ({ ...run, sent: await run.load.stop() })));
    for (const { fault, tenant, endpointIds, sent } of results) {
      // The fault happened: each endpoint had attempts refused or left hanging.
      for (const path of fault.paths) expect(receiver.on(path).filter((r) => r.answered !== 200).length, path).toBeGreaterThan(5);
      await waitForDeliveries(sent, receiver, fault.paths, 60_000);
      const t = tally(sent, receiver, fault.paths, [{ startedAt, clearedAt, blocksDelivery: true }]);
      await explainLost(tenant.client, t);
      expectRecovered(fault.name, t, RATE * 25);
      await expectReadModelsAgree(tenant.client, sent, t, endpointIds);
    }
  });
});
