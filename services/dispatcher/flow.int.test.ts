import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliveryIdFor } from "../../domain/routing/fanout.js";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, type TestStreams } from "../../test/support/nats.js";
import { eventually, startReceiver, type Receiver } from "../../test/support/receiver.js";
import { quietLogger, secretBox, seed, seedDelivery } from "../../test/support/spine.js";
import { createHttpSender } from "../outbound/http-sender.js";
import { createMetrics, DEFERRAL_REASONS, type DeferralReason } from "../shared/metrics.js";
import { createDispatcher } from "./dispatcher.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TENANT = "ten_flow";
const HEALTHY = "ep_healthy";
const HANGING = "ep_hanging";

/**
 * Flow, not deferral: a healthy endpoint's backlog is taken as fast as it answers, with nothing put
 * back to the server, while a hanging endpoint of the same tenant has its overflow go back.
 */
describe("dispatcher flow through per-endpoint lanes", () => {
  let streams: TestStreams;
  let receiver: Receiver;
  let view: RegistryView;
  let store: EventStore;
  const sender = createHttpSender({ targetPolicy: { allowPrivate: true } });
  let dispatcher: ReturnType<typeof createDispatcher>;
  const metrics = createMetrics();
  const deferred = async (reason: DeferralReason) => (await metrics.deliveryDeferrals.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  beforeAll(async () => {
    streams = await createTestStreams();
    receiver = await startReceiver();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    for (const [endpointId, path] of [
      [HEALTHY, "/healthy"],
      [HANGING, "/hanging"],
    ] as const) {
      await seed(store)(TENANT, "endpoint", endpointId, [
        { type: "endpoint.registered", data: { url: receiver.url(path), eventTypes: ["*"], secret: secretBox.encrypt(SECRET), deliveryPolicy: { timeoutMs: 3_000 } } },
      ]);
      receiver.setSecret(path, SECRET);
    }
    receiver.behave("/healthy", { status: 200, delayMs: 5 });
    receiver.behave("/hanging", { hang: true });
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
    // A window of 512 the burst overfills: the admission rule, not the window's room, must keep it in process.
    dispatcher = dispatcherWith(512);
  });
  afterAll(async () => {
    await dispatcher?.stop();
    await view.stop();
    await sender.close();
    await receiver.close();
    await streams.cleanup();
  });

  /** Appends `count` deliveries, 100 at a time: the dispatcher shares this process's event loop. */
  /** A dispatcher with the platform's default slots and a flow-control window of `maxHandled`. */
  const dispatcherWith = (maxHandled: number) =>
    createDispatcher({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology: streams.topology,
      logger: quietLogger(),
      sender,
      secretBox,
      concurrency: 256,
      concurrencyPerEndpoint: 32,
      maxHandled,
      metrics,
    });

  const schedule = async (endpointId: string, count: number, batch: string) => {
    for (let from = 0; from < count; from += 100) await scheduleSome(endpointId, from, Math.min(count, from + 100), batch);
  };
  const scheduleSome = (endpointId: string, from: number, to: number, batch: string) =>
    Promise.all(
      Array.from({ length: to - from }, (_, k) => {
        const i = from + k;
        const messageId = `msg_${batch}${endpointId.slice(3)}${i}`;
        return seedDelivery(store)(TENANT, deliveryIdFor(messageId, endpointId), {
          messageId,
          endpointId,
          eventType: "flow.test",
          payload: { i },
          registrySeq: view.appliedSeq(),
        });
      }),
    );

  const distinct = (path: string) => new Set(receiver.on(path).map((r) => r.webhookId)).size;

  it("takes a healthy endpoint's backlog of 1,000 through its 32 slots as fast as it answers, without one redelivery", async () => {
    await dispatcher.start();
    await schedule(HEALTHY, 40, "warm");
    await eventually(() => distinct("/healthy") === 40, 20_000, "40 warm-up deliveries");
    const startedAt = Date.now();
    await schedule(HEALTHY, 1_000, "burst");
    await eventually(() => distinct("/healthy") === 1_040, 60_000, "1,000 more healthy deliveries");
    expect(receiver.on("/healthy")).toHaveLength(1_040);
    expect(receiver.on("/healthy").every((r) => r.verified)).toBe(true);
    for (const reason of DEFERRAL_REASONS) expect(await deferred(reason), reason).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(20_000);
  }, 90_000);

  it("puts back a hanging endpoint's overflow (its slots and a short line stay), and its backlog costs the healthy endpoint nothing", async () => {
    // The hanging endpoint may hold a quarter of the window (128) while it is under half full.
    await schedule(HANGING, 1_000, "hang");
    await eventually(async () => (await deferred("endpoint_busy")) > 0, 20_000, "the hanging endpoint's overflow to go back");
    const startedAt = Date.now();
    await schedule(HEALTHY, 300, "beside");
    await eventually(() => distinct("/healthy") === 1_340, 30_000, "300 healthy deliveries beside the hanging backlog");
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    // At most its 32 slots' worth of attempts per 3 s timeout reached the hanging endpoint.
    expect(receiver.on("/hanging").length).toBeLessThanOrEqual(32 * (Math.ceil((Date.now() - startedAt) / 3_000) + 2));
  }, 90_000);
});
