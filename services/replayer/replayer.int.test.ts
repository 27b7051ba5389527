import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DomainEvent } from "../../contracts/events.js";
import { deliveryDecider } from "../../domain/delivery/delivery.js";
import { replayDecider } from "../../domain/replay/replay.js";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createTestStreams, readAllEvents, type TestStreams } from "../../test/support/nats.js";
import { eventually } from "../../test/support/receiver.js";
import { quietLogger, testContext } from "../../test/support/spine.js";
import { createReplayer } from "./replayer.js";

const ACME = "ten_acme";
const GLOBEX = "ten_globex";

const scheduled = (n: number): DomainEvent => ({
  type: "delivery.scheduled",
  data: { messageId: `msg_${n}`, endpointId: "ep_1", eventType: "order.paid", messageSeq: 1, messageReceivedAt: new Date().toISOString(), registrySeq: 1 },
});
const attempted: DomainEvent = {
  type: "delivery.attempted",
  data: { attempt: 1, startedAt: new Date().toISOString(), latencyMs: 3, statusCode: 400, errorClass: "client_error", error: "HTTP 400 from receiver" },
};
const dead: DomainEvent = { type: "delivery.dead_lettered", data: { attempt: 1, errorClass: "client_error", reason: "HTTP 400 from receiver" } };

/** A store whose `handle` fails once, after its events are stored, for the cause matching `pattern` (a crash before the ack). */
function crashingHandle(store: EventStore, pattern: RegExp): EventStore & { crashed: () => boolean } {
  let crashed = false;
  return {
    ...store,
    crashed: () => crashed,
    async handle(ref, decider, command, options) {
      const result = await store.handle(ref, decider, command, options);
      if (!crashed && pattern.test(options.causeId)) {
        crashed = true;
        throw new Error(`simulated crash after ${options.causeId}`);
      }
      return result;
    },
  };
}

describe("replayer", () => {
  let streams: TestStreams;
  let store: EventStore;

  const seed = (tenantId: string, aggregateType: "delivery" | "replay", id: string, events: DomainEvent[]) =>
    store.append({ tenantId, aggregateType, aggregateId: id }, events, { expectedVersion: 0, prevHash: null, causeId: `seed-${id}`, context: testContext() });
  const replayState = (id: string) => store.load({ tenantId: ACME, aggregateType: "replay", aggregateId: id }, replayDecider, { fresh: true });
  const deliveryState = (tenantId: string, id: string) => store.load({ tenantId, aggregateType: "delivery", aggregateId: id }, deliveryDecider, { fresh: true });

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    for (const n of [1, 3, 4]) await seed(ACME, "delivery", `dlv_${n}`, [scheduled(n), attempted, dead]);
    await seed(ACME, "delivery", "dlv_2", [scheduled(2)]);
    await seed(GLOBEX, "delivery", "dlv_9", [scheduled(9), attempted, dead]);
  });
  afterAll(async () => {
    await streams.cleanup();
  });

  it("replays the dead deliveries named, skips the rest, completes once, even after a crash midway", async () => {
    const crashing = crashingHandle(store, /dlv_3:replay:/);
    const replayer = createReplayer({ ...streams, store: crashing, logger: quietLogger(), deliveriesAtOnce: 1 });
    await seed(ACME, "replay", "rpl_one", [
      // dlv_2 is pending, dlv_9 is another tenant's, dlv_none does not exist, "x.y" is no delivery id.
      { type: "replay.requested", data: { selection: { filter: {} }, deliveryIds: ["dlv_1", "dlv_2", "dlv_9", "dlv_3", "dlv_none", "x.y"] } },
    ]);
    await replayer.start();
    try {
      await eventually(async () => (await replayState("rpl_one")).state.status === "completed", 20_000, "the replay to complete");
    } finally {
      await replayer.stop();
    }
    expect(crashing.crashed()).toBe(true);
    expect((await replayState("rpl_one")).state).toMatchObject({ status: "completed", replayed: ["dlv_1", "dlv_3"], skipped: 4 });
    expect((await deliveryState(ACME, "dlv_1")).state).toMatchObject({ status: "pending", nextAttempt: 2, series: 2, seriesFirstAttempt: 2, replayIds: ["rpl_one"] });
    expect((await deliveryState(ACME, "dlv_2")).state).toMatchObject({ status: "pending", series: 1 });
    expect((await deliveryState(GLOBEX, "dlv_9")).state).toMatchObject({ status: "dead", series: 1 });
    const events = await readAllEvents(streams, streams.topology);
    const replayed = events.filter((e) => e.envelope.type === "delivery.replayed").map((e) => e.envelope.aggregateId);
    expect(replayed.sort()).toEqual(["dlv_1", "dlv_3"]);
    expect(events.filter((e) => e.envelope.type === "replay.completed")).toHaveLength(1);
    expect(events.find((e) => e.envelope.type === "delivery.replayed")?.envelope).toMatchObject({
      causationId: "seed-rpl_one:0",
      actor: { kind: "system", id: "replayer" },
    });
  });

  it("does nothing more when a finished replay's request is delivered again", async () => {
    const before = (await streams.jsm.streams.info(streams.topology.stream)).state.last_seq;
    // A new durable from the start of the stream sees the old request again.
    await streams.jsm.consumers.delete(streams.topology.stream, streams.topology.consumerName("replayer"));
    const replayer = createReplayer({ ...streams, store, logger: quietLogger() });
    await replayer.start();
    await seed(ACME, "replay", "rpl_two", [{ type: "replay.requested", data: { selection: { deliveryIds: ["dlv_4"] }, deliveryIds: ["dlv_4"] } }]);
    try {
      await eventually(async () => (await replayState("rpl_two")).state.status === "completed", 20_000, "the second replay to complete");
    } finally {
      await replayer.stop();
    }
    const events = await readAllEvents(streams, streams.topology);
    // Only rpl_two's request, its one delivery.replayed and its completion were added.
    expect(events.filter((e) => e.seq > before).map((e) => e.envelope.type)).toEqual(["replay.requested", "delivery.replayed", "replay.completed"]);
  });
});
