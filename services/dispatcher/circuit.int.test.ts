import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../contracts/envelope.js";
import type { EventData } from "../../contracts/events.js";
import { GONE_REASON } from "../../domain/circuit/health.js";
import { attemptRecordedBy } from "../../domain/delivery/delivery.js";
import { endpointDecider } from "../../domain/endpoint/endpoint.js";
import { applyBatch } from "../../projections/checkpoint.js";
import { createDatabase, type Database } from "../../projections/db.js";
import { migrate } from "../../projections/migrate.js";
import { getEndpoint } from "../../projections/read-models/endpoints.js";
import { parseEnvelope } from "../../projections/read-models/shared.js";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, readAllEvents, type TestStreams } from "../../test/support/nats.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/postgres.js";
import { eventually, startReceiver, type Receiver } from "../../test/support/receiver.js";
import { quietLogger, secretBox, seed, seedDelivery, testContext } from "../../test/support/spine.js";
import { createDispatcher, type DispatcherDeps } from "./dispatcher.js";
import { createHttpSender } from "../outbound/http-sender.js";
import { ADMIN_TOKEN, createTenantWithKey, MAX_BODY_BYTES, startApiHarness, type ApiHarness } from "../api/testing.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TENANT = "ten_circuit";
/** Retries come fast, and never run out during a test. */
const FAST_RETRIES = { maxAttempts: 50, initialDelayMs: 20, maxDelayMs: 50, factor: 1, maxDurationMs: 120_000 };

/** One test's world: its own stream, read-model database, registry view and dispatcher. */
interface World {
  streams: TestStreams;
  store: EventStore;
  view: RegistryView;
  db: Database;
  database: TestDatabase;
  stop: () => Promise<void>;
}

describe("dispatcher: circuit breaker and endpoint health", () => {
  let receiver: Receiver;
  const sender = createHttpSender({ targetPolicy: { allowPrivate: true } });
  let world: World | undefined;

  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterEach(async () => {
    if (!world) return;
    await world.stop();
    await world.view.stop();
    await world.streams.cleanup();
    await world.db.end();
    await world.database.drop();
    world = undefined;
  });
  afterAll(async () => {
    await sender.close();
    await receiver.close();
  });

  async function start(overrides: Partial<DispatcherDeps>): Promise<World> {
    const streams = await createTestStreams();
    const database = await createTestDatabase();
    const db = await createDatabase(database.url);
    await migrate(db);
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    const view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
    const dispatcher = createDispatcher({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology: streams.topology,
      logger: quietLogger(),
      sender,
      secretBox,
      concurrency: 16,
      concurrencyPerEndpoint: 8,
      ...overrides,
    });
    await dispatcher.start();
    world = { streams, store, view, db, database, stop: () => dispatcher.stop() };
    return world;
  }

  async function register(w: World, endpointId: string, path: string, retryPolicy: Partial<typeof FAST_RETRIES> = FAST_RETRIES) {
    receiver.setSecret(path, SECRET);
    const { lastSeq } = await seed(w.store)(TENANT, "endpoint", endpointId, [
      {
        type: "endpoint.registered",
        data: { url: receiver.url(path), eventTypes: ["*"], secret: secretBox.encrypt(SECRET), retryPolicy },
      },
    ]);
    await w.view.waitFor(lastSeq, 5_000);
  }

  async function schedule(w: World, endpointId: string, deliveryId: string) {
    await seedDelivery(w.store)(TENANT, deliveryId, {
      messageId: `msg_${deliveryId}`,
      endpointId,
      eventType: "circuit.test",
      payload: { id: deliveryId },
      registrySeq: w.view.appliedSeq(),
    });
  }

  async function eventsOf(w: World, aggregateType: "endpoint" | "delivery", aggregateId: string): Promise<Envelope[]> {
    const envelopes: Envelope[] = [];
    for await (const { envelope } of w.store.readSubject(w.store.subjectOf({ tenantId: TENANT, aggregateType, aggregateId }))) envelopes.push(envelope);
    return envelopes;
  }

  const has = async (w: World, aggregateType: "endpoint" | "delivery", id: string, type: string) => (await eventsOf(w, aggregateType, id)).some((e) => e.type === type);

  /** Applies every event stored so far to the read models, as the projector does. */
  async function project(w: World, endpointId: string) {
    const events = (await readAllEvents(w.streams, w.streams.topology)).map(({ seq, envelope }) => ({ seq, envelope: parseEnvelope(envelope) }));
    await applyBatch(w.db, events);
    return getEndpoint(w.db, TENANT, endpointId);
  }

  const attemptsOf = async (w: World, ids: string[]) =>
    (await Promise.all(ids.map((id) => eventsOf(w, "delivery", id)))).flat().flatMap((e) => attemptRecordedBy(e) ?? []);

  it("opens after 5 transient failures, attempts nothing while open, then half-opens and closes on a probe's success", async () => {
    const w = await start({ breaker: { halfOpenAfterMs: 1_500 } });
    await register(w, "ep_flaky", "/flaky");
    await register(w, "ep_fine", "/fine");
    receiver.behave("/flaky", { status: 500 });
    await schedule(w, "ep_flaky", "dlv_f1");
    await schedule(w, "ep_flaky", "dlv_f2");

    await eventually(() => has(w, "endpoint", "ep_flaky", "endpoint.circuit_opened"), 15_000, "the circuit to open");
    const opened = (await eventsOf(w, "endpoint", "ep_flaky")).find((e) => e.type === "endpoint.circuit_opened")!;
    const data = opened.data as EventData<"endpoint.circuit_opened">;
    expect(data).toMatchObject({ consecutiveFailures: 5, reason: expect.stringMatching(/500/) });
    expect(Date.parse(data.halfOpenAt) - Date.parse(opened.occurredAt)).toBeGreaterThanOrEqual(1_400);
    await eventually(() => w.view.endpoint(TENANT, "ep_flaky")?.state.circuit.state === "open", 5_000, "the view to see it open");
    expect(await project(w, "ep_flaky")).toMatchObject({
      id: "ep_flaky",
      active: true,
      circuit: { state: "open", halfOpenAt: data.halfOpenAt, failingSince: data.failingSince },
    });

    // Attempts already in flight when it opened finish; then nothing goes until half-open time.
    await sleep(150);
    const hits = receiver.on("/flaky").length;
    const attempts = (await attemptsOf(w, ["dlv_f1", "dlv_f2"])).length;
    // A healthy endpoint of the same tenant is not held up meanwhile.
    await schedule(w, "ep_fine", "dlv_fine");
    await eventually(() => has(w, "delivery", "dlv_fine", "delivery.succeeded"), 1_000, "the healthy endpoint's delivery");
    await sleep(Math.max(0, Date.parse(data.halfOpenAt) - Date.now() - 200));
    expect(receiver.on("/flaky")).toHaveLength(hits);
    expect(await attemptsOf(w, ["dlv_f1", "dlv_f2"])).toHaveLength(attempts);
    expect(await has(w, "delivery", "dlv_f1", "delivery.dead_lettered")).toBe(false);

    receiver.behave("/flaky", { status: 200 });
    for (const id of ["dlv_f1", "dlv_f2"]) await eventually(() => has(w, "delivery", id, "delivery.succeeded"), 10_000, `${id} to succeed`);
    const circuitEvents = (await eventsOf(w, "endpoint", "ep_flaky")).map((e) => e.type).filter((t) => t.includes("circuit"));
    expect(circuitEvents).toEqual(["endpoint.circuit_opened", "endpoint.circuit_half_opened", "endpoint.circuit_closed"]);
    // Every attempt begun after the circuit opened waited for its half-open time.
    const late = (await attemptsOf(w, ["dlv_f1", "dlv_f2"])).filter((attempt) => Date.parse(attempt.startedAt) > Date.parse(opened.occurredAt));
    expect(late.length).toBeGreaterThan(0);
    for (const attempt of late) expect(Date.parse(attempt.startedAt)).toBeGreaterThanOrEqual(Date.parse(data.halfOpenAt));

    await eventually(() => w.view.endpoint(TENANT, "ep_flaky")?.state.circuit.state === "closed", 5_000, "the view to see it closed");
    const row = await project(w, "ep_flaky");
    expect(row).toMatchObject({ active: true, circuit: { state: "closed" } });
    expect(row?.circuit).toEqual({ state: "closed" });
  });

  it("disables an endpoint that answers 410 Gone", async () => {
    const w = await start({});
    await register(w, "ep_gone", "/gone");
    receiver.behave("/gone", { status: 410 });
    await schedule(w, "ep_gone", "dlv_g1");
    await eventually(() => has(w, "endpoint", "ep_gone", "endpoint.disabled"), 10_000, "the endpoint to be disabled");
    const disabled = (await eventsOf(w, "endpoint", "ep_gone")).find((e) => e.type === "endpoint.disabled")!;
    expect(disabled.data).toEqual({ reason: GONE_REASON });
    expect(disabled.actor).toEqual({ kind: "system", id: "dispatcher" });
    expect(await has(w, "delivery", "dlv_g1", "delivery.dead_lettered")).toBe(true);
    await eventually(() => w.view.endpoint(TENANT, "ep_gone")?.state.status === "disabled", 5_000, "the view to see it disabled");
    expect(w.view.endpoint(TENANT, "ep_gone")?.state).toMatchObject({ status: "disabled", disabledReason: GONE_REASON });
    expect(await project(w, "ep_gone")).toMatchObject({ id: "ep_gone", active: false, disabledReason: GONE_REASON });
    expect(receiver.on("/gone")).toHaveLength(1);
  });

  it("disables an endpoint whose failures last longer than the disable-after period; re-enabling starts afresh", async () => {
    const w = await start({ breaker: { halfOpenAfterMs: 200 }, endpointDisableAfterMs: 1_000 });
    await register(w, "ep_down", "/down");
    receiver.behave("/down", { status: 503 });
    await schedule(w, "ep_down", "dlv_d1");
    await eventually(() => has(w, "endpoint", "ep_down", "endpoint.disabled"), 15_000, "the endpoint to be disabled");
    const events = await eventsOf(w, "endpoint", "ep_down");
    const disabled = events.find((e) => e.type === "endpoint.disabled")!;
    const firstOpened = events.find((e) => e.type === "endpoint.circuit_opened")!.data as EventData<"endpoint.circuit_opened">;
    expect((disabled.data as EventData<"endpoint.disabled">).reason).toBe(`failing continuously since ${firstOpened.failingSince} (longer than 1 second)`);
    expect(Date.parse(disabled.occurredAt) - Date.parse(firstOpened.failingSince)).toBeGreaterThan(1_000);
    // The circuit cycled open → half-open → open with the same failingSince until then.
    const reopened = events.filter((e) => e.type === "endpoint.circuit_opened").map((e) => (e.data as EventData<"endpoint.circuit_opened">).failingSince);
    expect(reopened.length).toBeGreaterThan(1);
    expect(new Set(reopened)).toEqual(new Set([firstOpened.failingSince]));
    // The waiting delivery is dead-lettered as its endpoint is disabled: no new attempts go.
    await eventually(() => has(w, "delivery", "dlv_d1", "delivery.dead_lettered"), 10_000, "the delivery to be dead-lettered");
    await eventually(() => w.view.endpoint(TENANT, "ep_down")?.state.status === "disabled", 5_000, "the view to see it disabled");
    expect(await project(w, "ep_down")).toMatchObject({
      active: false,
      disabledReason: expect.stringMatching(/failing continuously/),
      circuit: { state: "open", failingSince: firstOpened.failingSince },
    });

    // PATCH {active: true}: the endpoint is active again with a closed circuit and a fresh run.
    const ref = { tenantId: TENANT, aggregateType: "endpoint" as const, aggregateId: "ep_down" };
    const { lastSeq } = await w.store.handle(
      ref,
      endpointDecider,
      { type: "UpdateEndpoint", changes: { active: true } },
      { causeId: "ep_down.enable", context: testContext() },
    );
    await w.view.waitFor(lastSeq, 5_000);
    expect(w.view.endpoint(TENANT, "ep_down")?.state).toMatchObject({ status: "active", circuit: { state: "closed" } });
    const row = await project(w, "ep_down");
    expect(row).toMatchObject({ active: true, disabledReason: null });
    expect(row?.circuit).toEqual({ state: "closed" });
    receiver.behave("/down", { status: 200 });
    await schedule(w, "ep_down", "dlv_d2");
    await eventually(() => has(w, "delivery", "dlv_d2", "delivery.succeeded"), 5_000, "a delivery after re-enabling");
  });

  it("dead-letters a retry whose window ends while the circuit is open, without attempting it, and an unattempted delivery past its window", async () => {
    const w = await start({ breaker: { halfOpenAfterMs: 5_000 } });
    await register(w, "ep_short", "/short", { ...FAST_RETRIES, maxDurationMs: 1_000 });
    receiver.behave("/short", { status: 500 });
    await schedule(w, "ep_short", "dlv_s1");
    await eventually(() => has(w, "endpoint", "ep_short", "endpoint.circuit_opened"), 10_000, "the circuit to open");
    await eventually(() => has(w, "delivery", "dlv_s1", "delivery.dead_lettered"), 10_000, "the delivery to be dead-lettered");
    const events = await eventsOf(w, "delivery", "dlv_s1");
    expect(events.flatMap((e) => attemptRecordedBy(e) ?? [])).toHaveLength(5);
    expect(events.at(-1)?.data).toEqual({
      attempt: 5,
      errorClass: "endpoint_unavailable",
      reason: "retry window of 1000 ms exhausted while the endpoint's circuit was open",
    });
    expect(receiver.on("/short")).toHaveLength(5);

    // A delivery never attempted is dead-lettered too once its window, counted from the message's
    // acceptance, would end before the circuit half-opens (README "Delivery").
    await schedule(w, "ep_short", "dlv_s2");
    await eventually(() => has(w, "delivery", "dlv_s2", "delivery.dead_lettered"), 10_000, "the unattempted delivery to be dead-lettered");
    const unattempted = await eventsOf(w, "delivery", "dlv_s2");
    expect(unattempted.map((e) => e.type)).toEqual(["delivery.scheduled", "delivery.dead_lettered"]);
    expect(unattempted.at(-1)?.data).toMatchObject({ errorClass: "endpoint_unavailable", reason: expect.stringMatching(/retry window of 1000 ms exhausted/) });
    expect(receiver.on("/short")).toHaveLength(5);
  });
});

/**
 * The same breaker seen by a client: the endpoint registered, read and re-enabled through the api
 * (`GET`/`PATCH /v1/webhooks/registry/{id}`, whose `circuit` comes from the endpoints read model),
 * with a dispatcher on the api's stream.
 */
describe("dispatcher: the circuit and re-enabling over the registry api", () => {
  let receiver: Receiver;
  let h: ApiHarness;
  let t: Awaited<ReturnType<typeof createTenantWithKey>>;
  let view: RegistryView;
  const sender = createHttpSender({ targetPolicy: { allowPrivate: true } });
  let stopDispatcher: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    receiver = await startReceiver();
    // The receiver is on loopback, so registration must accept private targets here.
    h = await startApiHarness({ config: { adminToken: ADMIN_TOKEN, maxBodyBytes: MAX_BODY_BYTES, allowPrivateTargets: true } });
    t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write"]);
    view = createRegistryView({ js: h.streams.js, jsm: h.streams.jsm, topology: h.streams.topology });
    await view.start();
  });
  afterEach(async () => {
    await stopDispatcher?.();
    stopDispatcher = undefined;
  });
  afterAll(async () => {
    await view?.stop();
    await h?.stop();
    await sender.close();
    await receiver?.close();
  });

  async function startDispatcher(overrides: Partial<DispatcherDeps>) {
    const { js, jsm, topology } = h.streams;
    const dispatcher = createDispatcher({
      js,
      jsm,
      store: h.deps.store,
      view,
      topology,
      logger: quietLogger(),
      sender,
      secretBox,
      concurrency: 8,
      concurrencyPerEndpoint: 4,
      ...overrides,
    });
    await dispatcher.start();
    stopDispatcher = () => dispatcher.stop();
  }

  const call = (method: "GET" | "POST" | "PATCH", url: string, body?: unknown, headers: Record<string, string> = {}) =>
    h.call({ method, url, token: t.key, tenantId: t.tenantId, body, headers });
  /** The endpoint as a client reads it, with the read models caught up to everything stored so far. */
  const read = async (endpointId: string) => {
    const seq = (await h.streams.jsm.streams.info(h.streams.topology.stream)).state.last_seq;
    const res = await call("GET", `/v1/webhooks/registry/${endpointId}`, undefined, { "x-zen-min-seq": String(seq) });
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  async function register(path: string) {
    const res = await call(
      "POST",
      "/v1/webhooks/registry",
      { url: receiver.url(path), eventTypes: ["*"], retryPolicy: FAST_RETRIES },
      { "idempotency-key": `register-${path}` },
    );
    expect(res.statusCode).toBe(201);
    receiver.setSecret(path, res.json().secret);
    await view.waitFor(Number(res.headers["x-zen-seq"]), 5_000);
    return res.json().id as string;
  }

  async function schedule(endpointId: string, deliveryId: string) {
    await seedDelivery(h.deps.store)(t.tenantId, deliveryId, {
      messageId: `msg_${deliveryId}`,
      endpointId,
      eventType: "circuit.api",
      payload: { id: deliveryId },
      registrySeq: view.appliedSeq(),
    });
  }

  async function eventTypesOf(aggregateType: "endpoint" | "delivery", aggregateId: string): Promise<string[]> {
    const types: string[] = [];
    const subject = h.deps.store.subjectOf({ tenantId: t.tenantId, aggregateType, aggregateId });
    for await (const { envelope } of h.deps.store.readSubject(subject)) types.push(envelope.type);
    return types;
  }
  const has = async (aggregateType: "endpoint" | "delivery", id: string, type: string) => (await eventTypesOf(aggregateType, id)).includes(type);

  it("shows the circuit half_open on GET while a probe is in flight, then closed", async () => {
    await startDispatcher({ breaker: { halfOpenAfterMs: 1_000 } });
    const endpointId = await register("/api-probe");
    // Five failures open the circuit; the probe then takes 3 s to succeed, long enough to be seen.
    receiver.behave("/api-probe", ...Array.from({ length: 5 }, () => ({ status: 500 })), { status: 200, delayMs: 3_000 });
    await schedule(endpointId, "dlv_probe");
    await eventually(() => has("endpoint", endpointId, "endpoint.circuit_opened"), 15_000, "the circuit to open");
    expect((await read(endpointId)).circuit).toMatchObject({ state: "open", halfOpenAt: expect.any(String), failingSince: expect.any(String) });

    await eventually(async () => (await read(endpointId)).circuit.state === "half_open", 10_000, "GET to show the circuit half_open");
    // Seen while the probe was still in flight: nothing has succeeded or closed the circuit yet.
    expect(await has("delivery", "dlv_probe", "delivery.succeeded")).toBe(false);
    expect(await has("endpoint", endpointId, "endpoint.circuit_closed")).toBe(false);
    expect(receiver.on("/api-probe")).toHaveLength(6);

    await eventually(() => has("endpoint", endpointId, "endpoint.circuit_closed"), 15_000, "the probe's success to close the circuit");
    expect((await read(endpointId)).circuit).toEqual({ state: "closed" });
    expect(await has("delivery", "dlv_probe", "delivery.succeeded")).toBe(true);
  });

  it("re-enables with PATCH {active: true} after a 410 disabled the endpoint: the circuit is closed and deliveries flow again", async () => {
    await startDispatcher({ breaker: { halfOpenAfterMs: 500 } });
    const endpointId = await register("/api-gone");
    // Five failures open the circuit, then the probe is answered 410 Gone.
    receiver.behave("/api-gone", ...Array.from({ length: 5 }, () => ({ status: 500 })), { status: 410 });
    await schedule(endpointId, "dlv_gone_1");
    await eventually(() => has("endpoint", endpointId, "endpoint.disabled"), 15_000, "the 410 to disable the endpoint");
    await eventually(() => has("delivery", "dlv_gone_1", "delivery.dead_lettered"), 5_000, "the 410 delivery to be dead");
    const disabled = await read(endpointId);
    expect(disabled).toMatchObject({ active: false, disabledReason: GONE_REASON });
    expect(disabled.circuit.state).not.toBe("closed");
    expect(receiver.on("/api-gone")).toHaveLength(6);

    // While disabled, a new delivery is dead-lettered without being sent.
    await schedule(endpointId, "dlv_gone_2");
    await eventually(() => has("delivery", "dlv_gone_2", "delivery.dead_lettered"), 10_000, "a delivery to the disabled endpoint to be dead");
    expect(receiver.on("/api-gone")).toHaveLength(6);

    receiver.behave("/api-gone", { status: 200 });
    const patched = await call("PATCH", `/v1/webhooks/registry/${endpointId}`, { active: true }, { "idempotency-key": "re-enable-api-gone" });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id: endpointId, active: true });
    expect(patched.json().disabledReason ?? null).toBeNull();
    const enabled = await read(endpointId);
    expect(enabled).toMatchObject({ active: true, circuit: { state: "closed" } });
    expect(enabled.disabledReason ?? null).toBeNull();
    expect(enabled.circuit).toEqual({ state: "closed" });
    await view.waitFor(Number(patched.headers["x-zen-seq"]), 5_000);

    // A new delivery is attempted at once (no half-open wait) and succeeds.
    const before = receiver.on("/api-gone").length;
    await schedule(endpointId, "dlv_gone_3");
    await eventually(() => has("delivery", "dlv_gone_3", "delivery.succeeded"), 5_000, "a delivery after re-enabling");
    expect(
      receiver
        .on("/api-gone")
        .slice(before)
        .map((r) => [r.webhookId, r.verified]),
    ).toEqual([["msg_dlv_gone_3", true]]);
    expect(await eventTypesOf("delivery", "dlv_gone_3")).toEqual(["delivery.scheduled", "delivery.succeeded"]);
  });
});
