import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ack, retryLater } from "../../streams/consumers.js";
import { createEventStore, type EventStore, type StoredEvent } from "../../streams/event-store.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, type TestStreams } from "../../test/support/nats.js";
import { quietLogger, secretBox, seed, seedDelivery } from "../../test/support/spine.js";
import type { OutboundRequest, SendResult } from "../outbound/index.js";
import { NOOP_TRACING } from "../shared/tracing.js";
import { createAttemptStages, type AttemptPorts } from "./attempt.js";
import { createEndpointHealth } from "./endpoint-health.js";
import { createLanes } from "./lanes.js";
import { DispatchStageError } from "./stages.js";
import { createMessagePayloads, MessageNotFoundError } from "../../streams/message-payloads.js";
import { sealAndSerialise } from "../../streams/envelope.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TENANT = "ten_stages";

/** The stages after the slot (prepare → send → record) against the real store, with a fake sender. */
describe("the dispatcher's attempt stages", () => {
  let streams: TestStreams;
  let store: EventStore;
  let view: RegistryView;
  const sent: OutboundRequest[] = [];
  let answer: (request: OutboundRequest) => Promise<SendResult> = async () => ({ startedAt: new Date(), latencyMs: 3, statusCode: 200 });

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    await seed(store)(TENANT, "endpoint", "ep_live", [
      { type: "endpoint.registered", data: { url: "https://hooks.example.invalid/in", eventTypes: ["*"], secret: secretBox.encrypt(SECRET) } },
    ]);
    await seed(store)(TENANT, "endpoint", "ep_gone", [
      { type: "endpoint.registered", data: { url: "https://hooks.example.invalid/gone", eventTypes: ["*"], secret: secretBox.encrypt(SECRET) } },
      { type: "endpoint.deleted", data: {} },
    ]);
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
  });
  afterAll(async () => {
    await view.stop();
    await streams.cleanup();
  });

  const stages = (overrides: Partial<AttemptPorts> = {}) =>
    createAttemptStages({
      store,
      view,
      health: createEndpointHealth({ store, logger: quietLogger() }),
      secretBox,
      payloads: createMessagePayloads({ jsm: streams.jsm, topology: streams.topology }),
      takeTokens: async () => undefined,
      circuitComeback: (_endpointId, afterMs) => retryLater(afterMs),
      send: (request) => (sent.push(request), answer(request)),
      logger: quietLogger(),
      tracing: NOOP_TRACING,
      ...overrides,
    });

  async function scheduled(deliveryId: string, endpointId: string): Promise<StoredEvent> {
    const { lastSeq, envelopes } = await seedDelivery(store)(TENANT, deliveryId, {
      messageId: `msg_${deliveryId}`,
      endpointId,
      eventType: "stage.test",
      payload: { deliveryId },
      registrySeq: view.appliedSeq(),
    });
    return { seq: lastSeq, envelope: envelopes[0]! };
  }

  const eventsOf = async (deliveryId: string) => {
    const events: StoredEvent[] = [];
    for await (const event of store.readSubject(store.subjectOf({ tenantId: TENANT, aggregateType: "delivery", aggregateId: deliveryId }))) events.push(event);
    return events;
  };
  const typesOf = async (deliveryId: string) => (await eventsOf(deliveryId)).map(({ envelope }) => envelope.type);
  const slot = () => createLanes({ slotsPerEndpoint: 1 }).acquire("ep");

  it("prepare reads the payload of the message the delivery names and signs the request; send goes out once; record appends the outcome with its attempt and acks", async () => {
    const trigger = await scheduled("dlv_ok", "ep_live");
    expect(trigger.envelope.data).not.toHaveProperty("payload");
    const settlement = await stages().attemptInSlot(trigger, false, await slot());
    expect(settlement).toEqual(ack);
    expect(await typesOf("dlv_ok")).toEqual(["delivery.scheduled", "delivery.succeeded"]);
    const request = sent.at(-1)!;
    expect(request.url).toBe("https://hooks.example.invalid/in");
    expect(request.headers["webhook-id"]).toBe("msg_dlv_ok");
    expect(request.headers["webhook-signature"]).toMatch(/^v1,/);
    expect(JSON.parse(request.body)).toMatchObject({ type: "stage.test", data: { deliveryId: "dlv_ok" } });
  });

  it("prepare gives the circuit's admission back when the endpoint's secret cannot be opened, sending nothing", async () => {
    const before = sent.length;
    const trigger = await scheduled("dlv_sealed", "ep_live");
    const health = createEndpointHealth({ store, logger: quietLogger() });
    const admit = vi.spyOn(health, "admit");
    const release = vi.spyOn(health, "release");
    const unopenable = {
      ...secretBox,
      decrypt: () => {
        throw new Error("no key for this secret");
      },
    };
    const failure = await stages({ health, secretBox: unopenable })
      .attemptInSlot(trigger, false, await slot())
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DispatchStageError);
    expect((failure as DispatchStageError).stage).toBe("prepare");
    expect(release).toHaveBeenCalledWith(expect.objectContaining({ endpointId: "ep_live" }), await admit.mock.results[0]!.value);
    expect(sent.length).toBe(before);
    expect(await typesOf("dlv_sealed")).toEqual(["delivery.scheduled"]);
  });

  it("prepare resolves an attempt an older stream left without its outcome (a crash between its two events), sending nothing", async () => {
    const startedAt = new Date().toISOString();
    await seed(store)(TENANT, "delivery", "dlv_legacy", [
      {
        type: "delivery.scheduled",
        data: { messageId: "msg_legacy", endpointId: "ep_live", eventType: "stage.legacy", messageSeq: 1, messageReceivedAt: startedAt, registrySeq: view.appliedSeq() },
      },
      { type: "delivery.attempted", data: { attempt: 1, startedAt, latencyMs: 4, statusCode: 204, errorClass: "none" } },
    ]);
    const before = sent.length;
    const [scheduledEvent] = await eventsOf("dlv_legacy");
    // The scheduled event, redelivered after the dispatcher that attempted it died.
    expect(await stages().attemptInSlot(scheduledEvent!, true, await slot())).toEqual(ack);
    expect(sent.length).toBe(before);
    expect(await typesOf("dlv_legacy")).toEqual(["delivery.scheduled", "delivery.attempted", "delivery.succeeded"]);
    const outcome = (await eventsOf("dlv_legacy")).at(-1)!;
    expect(outcome.envelope.data).toEqual({ attempt: 1, statusCode: 204 });
  });

  it("prepare sends the payload's own copy of a delivery scheduled as version 1, reading nothing else", async () => {
    // As the router wrote it before version 2: the payload copied, no messageSeq. Its registrySeq (a
    // registry event here, not a message) is what the upcast reads as naming the message.
    const { envelope, json } = sealAndSerialise({
      id: "dlv_v1:scheduled:0",
      type: "delivery.scheduled",
      schemaVersion: 1,
      tenantId: TENANT,
      aggregateType: "delivery",
      aggregateId: "dlv_v1",
      occurredAt: new Date().toISOString(),
      correlationId: "req_v1",
      causationId: null,
      actor: { kind: "system", id: "router" },
      data: {
        messageId: "msg_v1",
        endpointId: "ep_live",
        eventType: "stage.v1",
        payload: { copy: true },
        messageReceivedAt: new Date().toISOString(),
        registrySeq: view.appliedSeq(),
      },
      prevHash: null,
    });
    const { seq } = await streams.js.publish(store.subjectOf({ tenantId: TENANT, aggregateType: "delivery", aggregateId: "dlv_v1" }), json);
    expect(await stages().attemptInSlot({ seq, envelope }, false, await slot())).toEqual(ack);
    expect(JSON.parse(sent.at(-1)!.body)).toMatchObject({ type: "stage.v1", data: { copy: true } });
    expect(await typesOf("dlv_v1")).toEqual(["delivery.scheduled", "delivery.succeeded"]);
  });

  it("prepare fails a delivery whose named message is not in the stream, sending nothing and giving its probe slot back", async () => {
    const before = sent.length;
    const { lastSeq, envelopes } = await seed(store)(TENANT, "delivery", "dlv_lost", [
      {
        type: "delivery.scheduled",
        data: {
          messageId: "msg_lost",
          endpointId: "ep_live",
          eventType: "stage.lost",
          messageSeq: 999_999,
          messageReceivedAt: new Date().toISOString(),
          registrySeq: view.appliedSeq(),
        },
      },
    ]);
    const health = createEndpointHealth({ store, logger: quietLogger() });
    const admit = vi.spyOn(health, "admit");
    const release = vi.spyOn(health, "release");
    const tokens = vi.fn(async () => undefined);
    const failure = await stages({ health, takeTokens: tokens })
      .attemptInSlot({ seq: lastSeq, envelope: envelopes[0]! }, false, await slot())
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DispatchStageError);
    expect((failure as DispatchStageError).stage).toBe("prepare");
    expect((failure as DispatchStageError).cause).toBeInstanceOf(MessageNotFoundError);
    // The admission the circuit gave is the one given back, and no rate-limit token was spent.
    expect(release).toHaveBeenCalledTimes(1);
    expect(release).toHaveBeenCalledWith(expect.objectContaining({ endpointId: "ep_live" }), await admit.mock.results[0]!.value);
    expect(tokens).not.toHaveBeenCalled();
    expect(sent.length).toBe(before);
    expect(await typesOf("dlv_lost")).toEqual(["delivery.scheduled"]);
  });

  it("prepare acks a trigger an attempt has already superseded, sending nothing", async () => {
    const trigger = await scheduled("dlv_old", "ep_live");
    await stages().attemptInSlot(trigger, false, await slot());
    const before = sent.length;
    // The same trigger redelivered: the delivery has moved on.
    expect(await stages().attemptInSlot(trigger, true, await slot())).toEqual(ack);
    expect(sent.length).toBe(before);
    expect(await typesOf("dlv_old")).toEqual(["delivery.scheduled", "delivery.succeeded"]);
  });

  it("prepare dead-letters a delivery whose endpoint is deleted, without sending", async () => {
    const before = sent.length;
    const trigger = await scheduled("dlv_gone", "ep_gone");
    expect(await stages().attemptInSlot(trigger, false, await slot())).toEqual(ack);
    expect(sent.length).toBe(before);
    expect(await typesOf("dlv_gone")).toEqual(["delivery.scheduled", "delivery.dead_lettered"]);
  });

  it("prepare hands back a rate limit's deferral, sending nothing and recording nothing", async () => {
    const trigger = await scheduled("dlv_limited", "ep_live");
    const deferred = await stages({ takeTokens: async () => retryLater(7_000) }).attemptInSlot(trigger, false, await slot());
    expect(deferred).toEqual({ kind: "nak", delayMs: 7_000 });
    expect(await typesOf("dlv_limited")).toEqual(["delivery.scheduled"]);
  });

  it("tags a failure with its stage: a sender that throws fails in send, and nothing is recorded", async () => {
    const trigger = await scheduled("dlv_throws", "ep_live");
    answer = async () => {
      throw new Error("socket exploded");
    };
    const failure = await stages()
      .attemptInSlot(trigger, false, await slot())
      .catch((error: unknown) => error);
    answer = async () => ({ startedAt: new Date(), latencyMs: 3, statusCode: 200 });
    expect(failure).toBeInstanceOf(DispatchStageError);
    expect((failure as DispatchStageError).stage).toBe("send");
    expect(await typesOf("dlv_throws")).toEqual(["delivery.scheduled"]);
  });

  it("record turns a 500 into a scheduled retry, and releases the slot with the attempt's latency", async () => {
    const trigger = await scheduled("dlv_retry", "ep_live");
    answer = async () => ({ startedAt: new Date(), latencyMs: 42, statusCode: 500 });
    const lanes = createLanes({ slotsPerEndpoint: 1 });
    const held = await lanes.acquire("ep_live");
    expect(await stages().attemptInSlot(trigger, false, held)).toEqual(ack);
    answer = async () => ({ startedAt: new Date(), latencyMs: 3, statusCode: 200 });
    expect(await typesOf("dlv_retry")).toEqual(["delivery.scheduled", "delivery.retry_scheduled"]);
    expect(lanes.load("ep_live")).toMatchObject({ inFlight: 0, recentAttemptMs: 42 });
  });

  it("records timed-out attempts through a narrow line (a burst of hangs ending together), any other at once", async () => {
    const timeouts = Array.from({ length: 12 }, (_, n) => `dlv_hung${n}`);
    const triggers = await Promise.all(timeouts.map((id) => scheduled(id, "ep_live")));
    const healthyTrigger = await scheduled("dlv_beside", "ep_live");
    // Appends wait for the gate, so the records in flight can be counted.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const appending = new Set<string>();
    const gated: EventStore = {
      ...store,
      async append(ref, events, options) {
        appending.add(ref.aggregateId);
        await gate;
        return store.append(ref, events, options);
      },
    };
    const timedOut: SendResult = { startedAt: new Date(), latencyMs: 15_000, networkError: "timeout", error: "timed out after 15000 ms" };
    const attempt = stages({
      store: gated,
      // A circuit would open after five failures and append its own events: not what is counted here.
      health: createEndpointHealth({ store: gated, logger: quietLogger(), breaker: { failureThreshold: 1_000 } }),
      send: async (request) => (request.headers["webhook-id"] === "msg_dlv_beside" ? { startedAt: new Date(), latencyMs: 3, statusCode: 200 } : timedOut),
    });
    const settled = triggers.map(async (trigger) => attempt.attemptInSlot(trigger, false, await slot()));
    await expect.poll(() => appending.size, { timeout: 5_000 }).toBe(8);
    // A healthy attempt's record does not wait in that line.
    const healthy = attempt.attemptInSlot(healthyTrigger, false, await slot());
    await expect.poll(() => appending.has("dlv_beside"), { timeout: 5_000 }).toBe(true);
    expect([...appending].filter((id) => id.startsWith("dlv_hung"))).toHaveLength(8);
    open();
    expect(await Promise.all([...settled, healthy])).toEqual(Array(13).fill(ack));
    for (const id of timeouts) expect(await typesOf(id)).toEqual(["delivery.scheduled", "delivery.retry_scheduled"]);
  });
});
