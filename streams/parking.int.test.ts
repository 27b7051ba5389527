import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import type { ParkedCommand } from "../domain/parked/parked.js";
import { createTestStreams, type TestStreams } from "../test/support/nats.js";
import { eventually } from "../test/support/receiver.js";
import { ack } from "./consumers.js";
import type { EventStore } from "./event-store.js";
import { createParking } from "./parking.js";

describe("the replays of parked messages", () => {
  let streams: TestStreams;
  beforeAll(async () => {
    streams = await createTestStreams();
  });
  afterAll(() => streams.cleanup());

  it("are bounded too: a replay request that keeps failing fails the replay (the message stays parked) instead of coming back for ever", async () => {
    let loads = 0;
    const decided: ParkedCommand[] = [];
    // A store whose reads hit a bug: every replay request fails before it can record anything itself.
    const store = {
      load: async () => {
        loads++;
        throw new Error("a bug in loading");
      },
      handle: async (_ref: unknown, _decider: unknown, command: ParkedCommand) => (decided.push(command), { envelopes: [] }),
    } as unknown as EventStore;
    const silent = { warn: () => undefined, error: () => undefined };
    const parking = createParking({ js: streams.js, jsm: streams.jsm, store, topology: streams.topology, role: "router", maxFailures: 2, logger: silent });
    const replays = parking.replays!(async () => ack);
    await replays.start();
    try {
      const headers = natsHeaders();
      headers.set(EVENT_HEADERS.type, "parked.replay_requested");
      headers.set(EVENT_HEADERS.aggregateId, "pkd_router-7");
      await streams.js.publish(`${streams.topology.prefix}.evt.ten_p.ops.parked.pkd_router-7`, "{}", { headers });
      await eventually(() => decided.length === 1, 10_000, "the replay to be failed");
      expect(decided[0]).toMatchObject({ type: "FailReplay", error: "Error: a bug in loading" });
      expect(loads).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(loads).toBe(2); // terminated: it does not come back
    } finally {
      await replays.stop();
    }
  });
});
