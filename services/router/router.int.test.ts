import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventStore } from "../../streams/event-store.js";
import { createMessagePayloads } from "../../streams/message-payloads.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, readAllEvents, type TestStreams } from "../../test/support/nats.js";
import { eventually } from "../../test/support/receiver.js";
import { crashingStore, quietLogger, secretBox, seed } from "../../test/support/spine.js";
import { createRouter } from "./router.js";

const TENANT = "ten_router";

describe("router under redelivery", () => {
  let streams: TestStreams;
  let view: RegistryView;

  beforeAll(async () => {
    streams = await createTestStreams();
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    for (const id of ["ep_a", "ep_b", "ep_c"]) {
      await seed(store)(TENANT, "endpoint", id, [
        {
          type: "endpoint.registered",
          data: {
            url: `http://127.0.0.1:9/${id}`,
            eventTypes: id === "ep_c" ? ["other.*"] : ["order.*"],
            secret: secretBox.encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
          },
        },
      ]);
    }
    await seed(store)(TENANT, "message", "msg_redelivered", [{ type: "message.received", data: { eventType: "order.paid", payload: { n: 1 } } }]);
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
  });
  afterAll(async () => {
    await view.stop();
    await streams.cleanup();
  });

  it("schedules each target exactly once when it crashes midway through scheduling", async () => {
    const store = crashingStore(streams, /dlv_redelivered_a:scheduled/);
    const payloads = createMessagePayloads({ jsm: streams.jsm, topology: streams.topology });
    const router = createRouter({ js: streams.js, jsm: streams.jsm, store, view, topology: streams.topology, logger: quietLogger(), payloads });
    await router.start();
    try {
      await eventually(
        async () => {
          const events = await readAllEvents(streams, streams.topology);
          return events.filter((e) => e.envelope.type === "delivery.scheduled").length === 2;
        },
        20_000,
        "both deliveries to be scheduled",
      );
      await new Promise((r) => setTimeout(r, 1_500)); // room for a wrong second scheduling
    } finally {
      await router.stop();
    }
    expect(store.crashed()).toBe(true);
    const events = await readAllEvents(streams, streams.topology);
    const routing = events.filter((e) => e.envelope.type === "routing.decided");
    expect(routing).toHaveLength(1);
    expect(routing[0]!.envelope.data).toMatchObject({
      targets: [
        { endpointId: "ep_a", deliveryId: "dlv_redelivered_a" },
        { endpointId: "ep_b", deliveryId: "dlv_redelivered_b" },
      ],
    });
    const scheduled = events.filter((e) => e.envelope.type === "delivery.scheduled");
    expect(scheduled.map((e) => e.envelope.aggregateId).sort()).toEqual(["dlv_redelivered_a", "dlv_redelivered_b"]);
    // Each delivery names the message's event instead of copying its payload; the payload waits in the process for the dispatcher.
    const received = events.find((e) => e.envelope.type === "message.received")!;
    for (const { envelope } of scheduled) {
      expect(envelope.schemaVersion).toBe(2);
      expect(envelope.data).toMatchObject({ messageId: "msg_redelivered", messageSeq: received.seq, registrySeq: received.seq });
      expect(envelope.data).not.toHaveProperty("payload");
    }
    expect(payloads.size()).toBe(1);
    expect(await payloads.payloadOf({ tenantId: TENANT, messageId: "msg_redelivered", messageSeq: received.seq })).toEqual({ n: 1 });
  });
});
