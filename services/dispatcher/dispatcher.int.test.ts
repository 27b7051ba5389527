import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger, type Logger } from "../shared/logger.js";
import { createEventStore } from "../../streams/event-store.js";
import { verifyChain } from "../../streams/envelope.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, type TestStreams } from "../../test/support/nats.js";
import { eventually, startReceiver, type Receiver } from "../../test/support/receiver.js";
import { crashingStore, quietLogger, secretBox, seed, seedDelivery } from "../../test/support/spine.js";
import { createDispatcher } from "./dispatcher.js";
import { createHttpSender, type HttpSender } from "../outbound/http-sender.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TENANT = "ten_crash";

describe("dispatcher crash safety", () => {
  let streams: TestStreams;
  let receiver: Receiver;
  let view: RegistryView;
  const sender = createHttpSender({ targetPolicy: { allowPrivate: true } });
  let stopDispatcher: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    streams = await createTestStreams();
    receiver = await startReceiver();
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    await seed(store)(TENANT, "endpoint", "ep_crash", [
      { type: "endpoint.registered", data: { url: receiver.url("/crash"), eventTypes: ["*"], secret: secretBox.encrypt(SECRET) } },
    ]);
    receiver.setSecret("/crash", SECRET);
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
  });
  afterEach(async () => {
    await stopDispatcher?.();
    stopDispatcher = undefined;
  });
  afterAll(async () => {
    await view.stop();
    await sender.close();
    await receiver.close();
    await streams.cleanup();
  });

  async function run(pattern: RegExp, logger: Logger = quietLogger(), through: HttpSender = sender) {
    const store = crashingStore(streams, pattern);
    const dispatcher = createDispatcher({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology: streams.topology,
      logger,
      sender: through,
      secretBox,
      concurrency: 8,
      concurrencyPerEndpoint: 4,
    });
    await dispatcher.start();
    stopDispatcher = () => dispatcher.stop();
    return store;
  }

  async function schedule(deliveryId: string) {
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    await seedDelivery(store)(TENANT, deliveryId, {
      messageId: `msg_${deliveryId}`,
      endpointId: "ep_crash",
      eventType: "crash.test",
      payload: { id: deliveryId },
      registrySeq: view.appliedSeq(),
    });
    return store;
  }

  async function eventsOf(deliveryId: string) {
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    const envelopes = [];
    for await (const { envelope } of store.readSubject(store.subjectOf({ tenantId: TENANT, aggregateType: "delivery", aggregateId: deliveryId })))
      envelopes.push(envelope);
    return envelopes;
  }

  it("logs the attempt with its ids even when recording it fails", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, done) => (
        lines.push(
          ...chunk
            .toString("utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        ),
        done()
      ),
    });
    const crashing = await run(/dlv_unrecorded:attempt:1/, createLogger("info", sink));
    await schedule("dlv_unrecorded");
    await eventually(() => crashing.crashed() && lines.some((l) => l.msg === "delivery attempt" && l.deliveryId === "dlv_unrecorded"), 20_000, "the attempt line");
    const line = lines.find((l) => l.msg === "delivery attempt" && l.deliveryId === "dlv_unrecorded");
    expect(line).toMatchObject({
      level: 40,
      tenantId: TENANT,
      deliveryId: "dlv_unrecorded",
      endpointId: "ep_crash",
      messageId: "msg_dlv_unrecorded",
      attempt: 1,
      statusCode: 200,
      recorded: false,
      correlationId: expect.any(String),
    });
  });

  it("does not send again when the outcome was stored but the message never acked", async () => {
    const crashing = await run(/dlv_after:attempt:1/);
    await schedule("dlv_after");
    await eventually(() => crashing.crashed(), 20_000, "the crash");
    // Redelivery comes after the handler's nak delay; give it time to (wrongly) send again.
    await new Promise((r) => setTimeout(r, 2_500));
    const events = await eventsOf("dlv_after");
    expect(events.map((e) => e.type)).toEqual(["delivery.scheduled", "delivery.succeeded"]);
    expect(verifyChain(events)).toEqual({ ok: true });
    expect(receiver.received.filter((r) => r.webhookId === "msg_dlv_after")).toHaveLength(1);
  });

  it("gives the sender the 15 s default timeout when the endpoint sets no deliveryPolicy", async () => {
    const timeouts: number[] = [];
    const recording: HttpSender = { send: (req) => (timeouts.push(req.timeoutMs), sender.send(req)), close: async () => undefined };
    await run(/never/, quietLogger(), recording);
    await schedule("dlv_default_timeout");
    await eventually(async () => (await eventsOf("dlv_default_timeout")).some((e) => e.type === "delivery.succeeded"), 20_000, "the delivery");
    expect(timeouts).toEqual([15_000]);
  });
});
