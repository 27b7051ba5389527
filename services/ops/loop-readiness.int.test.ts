import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../../test/support/platform.js";
import { eventually } from "../../test/support/receiver.js";
import { RESTART_DELAY_MS } from "../../streams/reactor.js";
import { createTopology } from "../../streams/topology.js";

/**
 * `/ready` of a dispatcher and router process (started by `startPlatform`, as `npm start` does)
 * follows its consume loops, not only its consumers' existence on the server.
 */
describe("ops /ready: the consume loops of the process", () => {
  let zen: TestPlatform;
  const ready = async () => {
    const response = await fetch(`${zen.platform.opsUrl}/ready`);
    return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, boolean> } };
  };

  beforeAll(async () => {
    zen = await startTestPlatform({ ZEN_ROLES: "router,dispatcher", ZEN_OPS_PORT: "0" });
  }, 60_000);

  afterAll(async () => {
    await zen?.stop();
  });

  it("is 503 naming the consumers while the dispatcher's loop is down though its consumer exists, 200 once it runs again", async () => {
    expect(await ready()).toEqual({ status: 200, body: { status: "ready", checks: { nats: true, consumers: true } } });

    // Deleting the consumer ends the loop at once; adding it back leaves it on the server while the
    // loop waits RESTART_DELAY_MS before re-opening: existence alone would say bound.
    const topology = createTopology(zen.config.streamPrefix);
    const { jsm } = zen.platform.streams;
    const durable = topology.consumerName("dispatcher");
    const { config } = await jsm.consumers.info(topology.stream, durable);
    const brokenAt = Date.now();
    await jsm.consumers.delete(topology.stream, durable);
    await jsm.consumers.add(topology.stream, config);
    expect((await jsm.consumers.info(topology.stream, durable)).name).toBe(durable);
    const down = await ready();
    // The 503 below proves the point only if it was read inside the restart window.
    expect(Date.now() - brokenAt).toBeLessThan(RESTART_DELAY_MS);
    expect(down).toEqual({ status: 503, body: { status: "unavailable", checks: { nats: true, consumers: false } } });

    await eventually(async () => (await ready()).status === 200, 20_000, "/ready to be ready once the loop is re-opened");
    expect(await ready()).toEqual({ status: 200, body: { status: "ready", checks: { nats: true, consumers: true } } });
  });

  it("stays 503 while the router's consumer is gone, past a restart attempt, and recovers when it is back", async () => {
    const topology = createTopology(zen.config.streamPrefix);
    const { jsm } = zen.platform.streams;
    const durable = topology.consumerName("router");
    const { config } = await jsm.consumers.info(topology.stream, durable);
    await jsm.consumers.delete(topology.stream, durable);
    await new Promise((resolve) => setTimeout(resolve, RESTART_DELAY_MS + 500));
    expect(await ready()).toEqual({ status: 503, body: { status: "unavailable", checks: { nats: true, consumers: false } } });
    await jsm.consumers.add(topology.stream, config);
    await eventually(async () => (await ready()).status === 200, 30_000, "/ready to be ready once the router's consumer is back");
    expect(zen.logLines.join("")).toContain("consume loop ended");
  });
});
