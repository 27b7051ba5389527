import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopology } from "../../streams/topology.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, explainLost, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries, type FaultWindow, type Sent } from "./harness.js";

const RATE = 60;

describe("a 3-node NATS cluster under load (R3 stream and buckets, ZEN_STREAM_REPLICAS=3)", () => {
  let cluster: NatsCluster;
  let platform: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    receiver = await startReceiver();
    platform = await startTestPlatform({ NATS_URL: cluster.url, ZEN_STREAM_REPLICAS: "3", LOG_LEVEL: "warn" });
  });
  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    await cluster?.cleanup();
  });

  /** The node that leads the event stream now. */
  async function streamLeader(): Promise<string> {
    const info = await platform.platform.streams.jsm.streams.info(createTopology(platform.config.streamPrefix).stream);
    expect(info.config.num_replicas).toBe(3);
    return info.cluster!.leader!;
  }

  /**
   * Runs the load on a fresh tenant with endpoints `/<key>-a` and `/<key>-b` around `fault`, which
   * says, from the requests sent, when each part of it ended.
   */
  async function scenario(name: string, key: string, fault: () => Promise<(sent: readonly Sent[]) => FaultWindow[]>): Promise<void> {
    const paths = [`/${key}-a`, `/${key}-b`];
    const tenant = await createTenant(platform.url, name);
    const endpointIds = await createEndpoints(tenant, receiver, paths);
    const load = startLoad(tenant.client, RATE);
    await sleep(3_000);
    const clears = await fault();
    await sleep(10_000);
    const sent = await load.stop();
    await waitForDeliveries(sent, receiver, paths, 60_000);
    const t = tally(sent, receiver, paths, clears(sent));
    await explainLost(tenant.client, t);
    expectRecovered(name, t, RATE * 10);
    await expectReadModelsAgree(tenant.client, sent, t, endpointIds);
  }

  it("kill -9 of the event stream's leader node, restarted 5 s later: nothing acknowledged lost, all back within 10 s of a leader's election", async () => {
    await scenario("3-node cluster, kill -9 of the stream leader", "leader", async () => {
      const leader = cluster.node(await streamLeader());
      const killedAt = Date.now();
      await leader.stop({ kill: true });
      await sleep(5_000);
      await leader.start();
      const restartedAt = Date.now();
      // The stream takes no write until the survivors elect a leader (5–8 s on 2.9.10, sometimes only
      // once the node is back, and a first write may still be followed by refusals); ingest answers
      // 503 meanwhile. The fault ends when ingest answers 202 for good, or with the restart if later.
      return (sent) => {
        const afterKill = sent.filter((s) => s.sentAt > killedAt).sort((a, b) => a.answeredAt - b.answeredAt);
        const lastRefusal = afterKill.findLast((s) => s.status !== 202)?.answeredAt ?? killedAt;
        const acceptingAt = afterKill.find((s) => s.status === 202 && s.answeredAt > lastRefusal)?.answeredAt ?? lastRefusal;
        console.log(`[faults] 3-node cluster, kill -9 of the stream leader: ingest refused writes for ${((acceptingAt - killedAt) / 1000).toFixed(1)} s after the kill`);
        return [{ startedAt: killedAt, clearedAt: Math.max(restartedAt, acceptingAt), blocksDelivery: true }];
      };
    });
  });

  it("a rolling restart of all three nodes: nothing acknowledged lost", async () => {
    await scenario("3-node cluster, rolling restart", "rolling", async () => {
      // The other two nodes go on delivering while one is away.
      const windows: FaultWindow[] = [];
      for (const node of cluster.nodes) {
        const startedAt = Date.now();
        await node.stop();
        await sleep(1_000);
        await node.start();
        windows.push({ startedAt, clearedAt: Date.now(), blocksDelivery: false });
        // Time to catch up with the other two before the next one goes.
        await sleep(4_000);
      }
      return () => windows;
    });
  });
});
