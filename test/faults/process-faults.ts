import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniquePrefix } from "../support/nats.js";
import { platformProcessEnv } from "../support/platform.js";
import { startPrivateNats, type PrivateNats } from "../support/private-nats.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "../support/process.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { createTenant } from "../support/tenants.js";
import { createEndpoints, explainLost, type FaultWindow, expectReadModelsAgree, expectRecovered, startLoad, tally, waitForDeliveries } from "./harness.js";

const PATHS = ["/a", "/b"];

/** Every role in a process of its own, as a scaled-out deployment runs them. */
export const SPLIT = ["api", "router", "dispatcher", "projector", "replayer"];

/** kill -9, restarted 3 s later; or frozen (SIGSTOP) for 10 s, past the ack wait, then SIGCONT. */
type Fault = "kill" | "freeze";

/** A process layout (each entry the `ZEN_ROLES` of one process, the api's first) and its faults, in turn, under load. */
export interface ProcessScenario {
  name: string;
  /** Events a second of the steady load, each to two endpoints. */
  rate: number;
  processes: string[];
  faults: Array<[role: string, fault: Fault]>;
}

/** Runs each scenario: its processes spawned, a steady load, its faults in turn, then the tally. */
export const describeProcessFaults = (scenarios: ProcessScenario[]) =>
  describe.each(scenarios)("$name", ({ name, rate, processes: layout, faults }) => {
    const prefix = uniquePrefix();
    let database: TestDatabase;
    let nats: PrivateNats;
    let receiver: Receiver;
    const processes = new Map<string, PlatformProcess>();
    const ports = new Map<string, number>();
    let common: Record<string, string>;

    const readyUrl = (role: string) => `http://127.0.0.1:${ports.get(role)}/ready`;

    async function start(role: string): Promise<void> {
      const port = ports.get(role)!;
      const withApi = role.split(",").includes("api");
      const env = { ...common, ZEN_ROLES: role, ...(withApi ? { PORT: String(port) } : { ZEN_OPS_PORT: String(port), PORT: String(await freePort()) }) };
      // The build, as `npm start` runs it (the suite's set-up builds it): a restart's time to ready is
      // the platform's, not tsx compiling the sources on a loaded machine (5–10 s here).
      processes.set(role, spawnPlatform(env, { compiled: true }));
      await waitForHttp(readyUrl(role), 60_000);
    }

    /**
     * Brings the fault on `role`'s process, waits until the process is ready again, and says when the
     * fault began and ended: the restarted process ready (within 10 s of its restart), or the frozen
     * one running again (it works before its `/ready` is asked). Only a process that routes or
     * dispatches stops delivery while it is away.
     */
    async function inflict(role: string, fault: Fault): Promise<FaultWindow> {
      const running = processes.get(role)!;
      const startedAt = Date.now();
      const blocksDelivery = role.split(",").some((r) => r === "router" || r === "dispatcher");
      if (fault === "freeze") {
        running.child.kill("SIGSTOP");
        await sleep(10_000);
        running.child.kill("SIGCONT");
        const resumedAt = Date.now();
        await waitForHttp(readyUrl(role), 30_000);
        return { startedAt, clearedAt: resumedAt, blocksDelivery };
      }
      running.child.kill("SIGKILL");
      await running.exited;
      await sleep(3_000);
      const restartedAt = Date.now();
      await start(role);
      const clearedAt = Date.now();
      console.log(`[faults] ${role} ready ${clearedAt - restartedAt} ms after its restart`);
      expect(clearedAt - restartedAt, `${role} ready after its restart (ms)`).toBeLessThanOrEqual(10_000);
      return { startedAt, clearedAt, blocksDelivery };
    }

    beforeAll(async () => {
      database = await createTestDatabase();
      nats = await startPrivateNats();
      receiver = await startReceiver();
      common = { ...platformProcessEnv(database.url, prefix), NATS_URL: nats.url };
      for (const role of layout) ports.set(role, await freePort());
      await start(layout[0]!);
      await Promise.all(layout.slice(1).map(start));
    });
    afterAll(async () => {
      for (const running of processes.values()) running.child.kill("SIGKILL");
      await Promise.all([...processes.values()].map((running) => running.exited));
      await receiver?.close();
      await nats?.cleanup();
      await database?.drop();
    });

    it("loses nothing, delivers within 10 s of each fault's end, and the read models agree", async () => {
      const base = `http://127.0.0.1:${ports.get(layout[0]!)}`;
      const tenant = await createTenant(base, name);
      const endpointIds = await createEndpoints(tenant, receiver, PATHS);
      const load = startLoad(tenant.client, rate);
      const windows: FaultWindow[] = [];
      await sleep(4_000);
      for (const [role, fault] of faults) {
        windows.push(await inflict(role, fault));
        await sleep(2_000);
      }
      await sleep(3_000);
      const sent = await load.stop();
      await waitForDeliveries(sent, receiver, PATHS, 90_000);

      const t = tally(sent, receiver, PATHS, windows);
      if (t.failuresAfterClear > 0) console.log(`[faults] ${name}: fault windows ${JSON.stringify(windows)}`);
      await explainLost(tenant.client, t);
      expectRecovered(name, t, rate * 8);
      await expectReadModelsAgree(tenant.client, sent, t, endpointIds);
    });
  });
