import type { JetStreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import type { ProjectorState } from "../projections/index.js";
import { createTopology } from "../streams/topology.js";
import { createReadiness, readinessStatus } from "./api/readiness.js";
import { createProbes, projectorAlive } from "./probes.js";

const topology = createTopology("zen");

/** A manager whose `consumers.info` answers for the names in `existing` and counts its calls. */
function fakeJsm(existing: Set<string>) {
  const asked: string[] = [];
  const jsm = {
    consumers: {
      info: async (_stream: string, name: string) => {
        asked.push(name);
        if (!existing.has(name)) throw new Error("consumer not found");
        return { num_pending: 0, num_ack_pending: 0 };
      },
    },
  } as unknown as JetStreamManager;
  return { jsm, asked };
}

describe("consumers bound: loops alive and consumers on the server", () => {
  const roles = ["router", "dispatcher"];
  const allExist = () => new Set(roles.map((role) => topology.consumerName(role)));

  it("is true when every loop runs and every durable consumer exists", async () => {
    const { jsm } = fakeJsm(allExist());
    const probes = createProbes({ jsm, topology, consumers: roles, loops: [() => true, () => true] });
    expect(await probes.consumersBound()).toBe(true);
  });

  it("is false when a loop has stopped, though every consumer exists on the server", async () => {
    const { jsm, asked } = fakeJsm(allExist());
    let dispatching = true;
    const probes = createProbes({ jsm, topology, consumers: roles, loops: [() => true, () => dispatching] });
    expect(await probes.consumersBound()).toBe(true);
    dispatching = false;
    expect(await probes.consumersBound()).toBe(false);
    // Answered from the process alone: the server is not asked about a loop known dead.
    expect(asked).toHaveLength(2);
    dispatching = true;
    expect(await probes.consumersBound()).toBe(true);
  });

  it("fails when a consumer is gone, while its loop still says it runs", async () => {
    const { jsm } = fakeJsm(new Set([topology.consumerName("router")]));
    const probes = createProbes({ jsm, topology, consumers: roles, loops: [() => true] });
    await expect(probes.consumersBound()).rejects.toThrow("consumer not found");
  });
});

describe("the projector's loop", () => {
  it("counts projecting and standing by for the lock as alive, down as not", () => {
    const alive = (state: ProjectorState) => projectorAlive({ state: () => state })();
    expect(alive("projecting")).toBe(true);
    expect(alive("standby")).toBe(true);
    expect(alive("down")).toBe(false);
  });
});

describe("readiness over the probes", () => {
  it("is unavailable, naming the consumers, when a loop is down, and ready when it runs again", async () => {
    const { jsm } = fakeJsm(new Set([topology.consumerName("dispatcher")]));
    let state: ProjectorState = "standby";
    let dispatching = false;
    const probes = createProbes({ jsm, topology, consumers: ["dispatcher"], loops: [() => dispatching, projectorAlive({ state: () => state })] });
    const readiness = createReadiness({ nc: undefined, probes });
    // `nc` is absent here, so NATS is false: the mapping is read from `consumers` alone.
    expect(await readiness()).toEqual({ nats: false, consumers: false });
    expect(readinessStatus({ ...(await readiness()), nats: true })).toBe("unavailable");
    dispatching = true;
    expect(await readiness()).toEqual({ nats: false, consumers: true });
    expect(readinessStatus({ ...(await readiness()), nats: true })).toBe("ready");
    state = "down";
    expect(readinessStatus({ ...(await readiness()), nats: true })).toBe("unavailable");
    state = "projecting";
    expect(readinessStatus({ ...(await readiness()), nats: true })).toBe("ready");
  });
});
