import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parkedDecider, parkedIdFor } from "../../domain/parked/parked.js";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createParking } from "../../streams/parking.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, readAllEvents, type TestStreams } from "../../test/support/nats.js";
import { eventually } from "../../test/support/receiver.js";
import { quietLogger, secretBox, seed, testContext } from "../../test/support/spine.js";
import { createMetrics } from "../shared/metrics.js";
import { createRouter } from "./router.js";

const BIG = "ten_big";
const SMALL = "ten_small";
const MAX_FAILURES = 3;
/** Room for every small event, not for the big tenant's routing decision (40 targets). */
const SMALL_MESSAGE_BYTES = 4_096;

describe("a message the router cannot append (issue 12: poison messages end)", () => {
  let streams: TestStreams;
  let store: EventStore;
  let view: RegistryView;
  let router: ReturnType<typeof createRouter>;
  const metrics = createMetrics();

  const setMaxMessageBytes = async (bytes: number) => {
    const { config } = await streams.jsm.streams.info(streams.topology.stream);
    await streams.jsm.streams.update(streams.topology.stream, { ...config, max_msg_size: bytes });
  };
  const events = () => readAllEvents(streams, streams.topology);
  const ofType = async (type: string, tenantId?: string) => (await events()).filter((e) => e.envelope.type === type && (!tenantId || e.envelope.tenantId === tenantId));
  const parkedCount = async () => (await metrics.parkedMessages.get()).values.find((v) => v.labels.reactor === "router" && v.labels.reason === "handler_failed")?.value;

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    const secret = secretBox.encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    for (let i = 0; i < 40; i++) {
      await seed(store)(BIG, "endpoint", `ep_big${i}`, [{ type: "endpoint.registered", data: { url: `http://127.0.0.1:9/${i}`, eventTypes: ["order.*"], secret } }]);
    }
    await seed(store)(SMALL, "endpoint", "ep_small", [{ type: "endpoint.registered", data: { url: "http://127.0.0.1:9/s", eventTypes: ["order.*"], secret } }]);
    await setMaxMessageBytes(SMALL_MESSAGE_BYTES);
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
    const logger = quietLogger();
    const parking = createParking({
      js: streams.js,
      jsm: streams.jsm,
      store,
      topology: streams.topology,
      role: "router",
      maxFailures: MAX_FAILURES,
      logger,
      onParked: (reason) => metrics.parkedMessages.inc({ reactor: "router", reason }),
    });
    router = createRouter({ js: streams.js, jsm: streams.jsm, store, view, topology: streams.topology, logger, parking });
    await router.start();
  });
  afterAll(async () => {
    await router?.stop();
    await view?.stop();
    await streams.cleanup();
  });

  it("parks it after its bound while other tenants' messages flow, and routes it on replay once fixed", async () => {
    const { lastSeq: poisonSeq } = await seed(store)(BIG, "message", "msg_poison", [{ type: "message.received", data: { eventType: "order.paid", payload: { n: 0 } } }]);
    // Other tenants' messages arrive while the poison one fails: each is routed at once.
    for (let n = 1; n <= 5; n++) {
      await seed(store)(SMALL, "message", `msg_small${n}`, [{ type: "message.received", data: { eventType: "order.paid", payload: { n } } }]);
    }
    await eventually(async () => (await ofType("routing.decided", SMALL)).length === 5, 10_000, "the small tenant's messages to be routed");
    const parkedId = parkedIdFor("router", poisonSeq);
    await eventually(async () => (await ofType("parked.added")).length === 1, 20_000, "the poison message to be parked");
    const [parked] = await ofType("parked.added");
    const smallRouted = await ofType("routing.decided", SMALL);
    expect(Math.max(...smallRouted.map((e) => e.seq))).toBeLessThan(parked!.seq);
    expect(parked!.envelope).toMatchObject({
      tenantId: BIG,
      aggregateType: "parked",
      aggregateId: parkedId,
      data: { reactor: "router", streamSeq: poisonSeq, eventType: "message.received", reason: "handler_failed", failures: MAX_FAILURES },
    });
    expect((parked!.envelope.data as { error: string }).error).toMatch(/size/i);
    expect(await parkedCount()).toBe(1);

    // Parked means settled: the message no longer comes back to the router.
    await eventually(
      async () => (await streams.jsm.consumers.info(streams.topology.stream, streams.topology.consumerName("router"))).num_ack_pending === 0,
      5_000,
      "the router to hold nothing",
    );
    expect(await ofType("routing.decided", BIG)).toHaveLength(0);

    const ref = { tenantId: BIG, aggregateType: "parked" as const, aggregateId: parkedId };
    const requestReplay = (n: number) => store.handle(ref, parkedDecider, { type: "RequestReplay" }, { causeId: `${parkedId}:replay:${n}`, context: testContext() });

    // A replay before the fix fails again and leaves the message parked, with the error.
    await requestReplay(1);
    await eventually(async () => (await ofType("parked.replay_failed")).length === 1, 10_000, "the first replay to fail");
    expect((await store.load(ref, parkedDecider, { fresh: true })).state.status).toBe("parked");

    // Fixed (the stream takes larger messages again): a replay routes it to every target.
    await setMaxMessageBytes(-1);
    await requestReplay(2);
    await eventually(async () => (await ofType("parked.replayed")).length === 1, 10_000, "the replay to route the message");
    const [decision] = await ofType("routing.decided", BIG);
    expect((decision!.envelope.data as { targets: unknown[] }).targets).toHaveLength(40);
    await eventually(async () => (await ofType("delivery.scheduled", BIG)).length === 40, 10_000, "its 40 deliveries to be scheduled");
    expect((await store.load(ref, parkedDecider, { fresh: true })).state.status).toBe("replayed");
    expect(await parkedCount()).toBe(1);
  });
});
