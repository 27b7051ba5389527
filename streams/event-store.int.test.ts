import { JetStreamApiError } from "@nats-io/jetstream";
import { ConnectionError, NoRespondersError, TimeoutError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../contracts/common.js";
import { endpointDecider } from "../domain/endpoint/endpoint.js";
import { messageDecider } from "../domain/message/message.js";
import { boundCandidates } from "../domain/routing/candidate-set.js";
import { tenantDecider } from "../domain/tenant/tenant.js";
import { NewerEventVersionError } from "../domain/upcast.js";
import { secretBox } from "../test/support/spine.js";
import { createTestStreams, type TestStreams } from "../test/support/nats.js";
import { sealAndSerialise, verifyChain } from "./envelope.js";
import { ConcurrencyError, createEventStore, type EventStore } from "./event-store.js";
import { createJetStreamAppender, type JetStreamAppender } from "./jetstream-appender.js";

const actor: Actor = { kind: "system", id: "test" };
const context = () => ({ correlationId: "req-1", causationId: null, actor, now: new Date() });

describe("event store on JetStream", () => {
  let streams: TestStreams;
  let store: EventStore;

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
  });
  afterAll(() => streams.cleanup());

  const tenantRef = (id: string) => ({ tenantId: id, aggregateType: "tenant" as const, aggregateId: id });
  const created = (name: string) => [{ type: "tenant.created" as const, data: { name } }];

  it("lets exactly one of two concurrent appends at the same version win", async () => {
    const ref = tenantRef("ten_race");
    const results = await Promise.allSettled([
      store.append(ref, created("a"), { expectedVersion: 0, prevHash: null, causeId: "cause-a", context: context() }),
      store.append(ref, created("b"), { expectedVersion: 0, prevHash: null, causeId: "cause-b", context: context() }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(ConcurrencyError);
    const events = [];
    for await (const event of store.readSubject(store.subjectOf(ref))) events.push(event);
    expect(events).toHaveLength(1);
  });

  const eventsOf = async (ref: ReturnType<typeof tenantRef>) => {
    const events = [];
    for await (const event of store.readSubject(store.subjectOf(ref))) events.push(event);
    return events;
  };

  it("stores an append repeated with the same cause (the same msgID) once, and says the state was stale", async () => {
    const ref = tenantRef("ten_dupe");
    await store.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: "same-cause", context: context() });
    const later = { ...context(), now: new Date(Date.now() + 1_000) };
    const again = store.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: "same-cause", context: later });
    await expect(again).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await eventsOf(ref)).toHaveLength(1);
  });

  describe("an append whose answer is lost", () => {
    /** The real appender behind a script: each call's step says what the store gets back. */
    const scripted = (steps: ("send-then-lose" | "lose" | "no-responders" | "not-connected" | "unavailable" | "send")[]) => {
      const real = createJetStreamAppender(streams.nc);
      const calls: string[] = [];
      const appender: Pick<JetStreamAppender, "publish"> = {
        async publish(subject, data, headers, timeout) {
          const step = steps[calls.length] ?? "send";
          calls.push(step);
          if (step === "send") return real.publish(subject, data, headers, timeout);
          if (step === "send-then-lose") await real.publish(subject, data, headers, timeout);
          if (step === "not-connected") throw new ConnectionError("disconnected from NATS: not sent");
          if (step === "unavailable") throw new JetStreamApiError({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" });
          throw step === "no-responders" ? new NoRespondersError(subject) : new TimeoutError();
        },
      };
      return { calls, store: createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology, appender }) };
    };

    it("is re-sent through a stream error after an unanswered first send that was stored: the duplicate answer is success", async () => {
      const { calls, store: lossy } = scripted(["send-then-lose", "unavailable"]);
      const ref = tenantRef("ten_lost_then_unavailable");
      const { lastSeq } = await lossy.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: "lost-unavailable", context: context() });
      expect((await eventsOf(ref)).map((event) => event.seq)).toEqual([lastSeq]);
      expect(calls).toEqual(["send-then-lose", "unavailable", "send"]);
    });

    it("is re-sent: when the first send was stored, the duplicate answer is this append's success, stored once", async () => {
      const { calls, store: lossy } = scripted(["send-then-lose"]);
      const ref = tenantRef("ten_lost_answer");
      const { lastSeq } = await lossy.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: "lost", context: context() });
      const events = await eventsOf(ref);
      expect(events.map((event) => event.seq)).toEqual([lastSeq]);
      expect(calls).toEqual(["send-then-lose", "send"]);
    });

    it("is re-sent until JetStream answers, through no-responders answers (a server starting up), refusals while disconnected and errors of a stream without a leader", async () => {
      const { calls, store: lossy } = scripted(["lose", "not-connected", "no-responders", "unavailable", "send"]);
      const ref = tenantRef("ten_lost_never_sent");
      const { lastSeq } = await lossy.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: "never", context: context() });
      expect((await eventsOf(ref)).map((event) => event.seq)).toEqual([lastSeq]);
      expect(calls).toEqual(["lose", "not-connected", "no-responders", "unavailable", "send"]);
    });

    it.each([
      ["no responders", "no-responders", NoRespondersError],
      ["not sent (disconnected)", "not-connected", ConnectionError],
    ] as const)("is not re-sent when the first answer is %s: nothing was stored", async (_, step, errorClass) => {
      const { calls, store: lossy } = scripted([step]);
      const ref = tenantRef(`ten_first_${step}`);
      const failed = lossy.append(ref, created("x"), { expectedVersion: 0, prevHash: null, causeId: step, context: context() });
      await expect(failed).rejects.toBeInstanceOf(errorClass);
      expect(calls).toEqual([step]);
      expect(await eventsOf(ref)).toHaveLength(0);
    });
  });

  it("handles a command against the loaded state, refusing a second create", async () => {
    const ref = tenantRef("ten_handle");
    const result = await store.handle(ref, tenantDecider, { type: "CreateTenant", name: "Acme" }, { causeId: "c1", context: context() });
    expect(result.state).toMatchObject({ status: "active", name: "Acme" });
    await expect(store.handle(ref, tenantDecider, { type: "CreateTenant", name: "Acme" }, { causeId: "c2", context: context() })).rejects.toMatchObject({
      code: "conflict",
    });
    const fresh = await store.load(ref, tenantDecider, { fresh: true });
    expect(fresh.version).toBe(result.lastSeq);
  });

  it("retries a conflicting command after a reload, so concurrent commands all land, in some order", async () => {
    const ref = { tenantId: "ten_retry", aggregateType: "endpoint" as const, aggregateId: "ep_retry" };
    const secret = secretBox.encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    await store.handle(
      ref,
      endpointDecider,
      { type: "RegisterEndpoint", endpointId: "ep_retry", url: "https://example.com/a", eventTypes: ["*"], secret, secretKeyBytes: { base64: 24, text: 38 } },
      { causeId: "reg", context: context() },
    );
    const updates = ["b", "c", "d", "e"].map((path, i) =>
      store.handle(
        ref,
        endpointDecider,
        { type: "UpdateEndpoint", changes: { url: `https://example.com/${path}`, metadata: { n: String(i) } } },
        { causeId: `upd-${path}`, context: context() },
      ),
    );
    await Promise.all(updates);
    const types = [];
    for await (const { envelope } of store.readSubject(store.subjectOf(ref))) types.push(envelope.type);
    expect(types).toEqual(["endpoint.registered", ...Array(4).fill("endpoint.updated")]);
  });

  it("loads aggregates with direct gets, creating no consumer", async () => {
    const ref = tenantRef("ten_handle");
    const consumers = async () => (await streams.jsm.consumers.list(streams.topology.stream).next()).length;
    const before = await consumers();
    for (let i = 0; i < 20; i++) await store.load(ref, tenantDecider, { fresh: true });
    expect(await consumers()).toBe(before);
  });

  it("chains every event of an aggregate to the one before it, so an edit is detectable", async () => {
    const ref = { tenantId: "ten_chain", aggregateType: "apikey" as const, aggregateId: "key_chain" };
    const events = [
      { type: "apikey.created" as const, data: { name: "k", scopes: ["ingest" as const], keyHash: "h", keyPrefix: "zk_1" } },
      { type: "apikey.revoked" as const, data: {} },
    ];
    await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: "chain", context: context() });
    const envelopes = [];
    for await (const { envelope } of store.readSubject(store.subjectOf(ref))) envelopes.push(envelope);
    expect(envelopes.map((e) => e.type)).toEqual(["apikey.created", "apikey.revoked"]);
    expect(verifyChain(envelopes)).toEqual({ ok: true });
    const tampered = [envelopes[0]!, { ...envelopes[1]!, data: { forged: true } }];
    expect(verifyChain(tampered)).toMatchObject({ ok: false, index: 1 });
  });

  it("loads a message whose stream holds a version-1 routing decision upcast, and reads it as stored", async () => {
    const ref = { tenantId: "ten_v1", aggregateType: "message" as const, aggregateId: "msg_v1" };
    const received = { eventType: "order.paid", payload: { n: 1 } };
    const appended = await store.append(ref, [{ type: "message.received", data: received }], {
      expectedVersion: 0,
      prevHash: null,
      causeId: "msg_v1",
      context: context(),
    });
    // What the router wrote before version 2: every candidate listed, no candidateSet.
    const candidates = Array.from({ length: 120 }, (_, i) => ({ endpointId: `ep_${String(i).padStart(3, "0")}`, matched: i < 2, reason: i < 2 ? "matches" : "no" }));
    const targets = [0, 1].map((i) => ({ endpointId: candidates[i]!.endpointId, deliveryId: `dlv_v1_${i}` }));
    const v1 = { eventType: "order.paid", strategy: "fanout" as const, registrySeq: 1, candidates, targets };
    const { hash, ...unsealed } = appended.envelopes[0]!;
    const { json } = sealAndSerialise({ ...unsealed, id: "msg_v1:routing:0", type: "routing.decided", schemaVersion: 1, data: v1, prevHash: hash });
    await streams.js.publish(store.subjectOf(ref), json);

    const { state } = await store.load(ref, messageDecider, { fresh: true });
    expect(state).toEqual({ status: "routed", ...received, routing: { ...v1, ...boundCandidates(candidates) } });
    const stored = [];
    for await (const { envelope } of store.readSubject(store.subjectOf(ref))) stored.push(envelope);
    expect(stored.map((e) => [e.type, e.schemaVersion])).toEqual([
      ["message.received", 1],
      ["routing.decided", 1],
    ]);
    expect(stored[1]!.data).toEqual(v1);
    expect(verifyChain(stored)).toEqual({ ok: true });
  });

  it("refuses to fold an event of a schema version newer than its code (a newer process wrote it) instead of reading it as current", async () => {
    const ref = { tenantId: "ten_newer", aggregateType: "message" as const, aggregateId: "msg_newer" };
    const appended = await store.append(ref, [{ type: "message.received", data: { eventType: "order.paid", payload: {} } }], {
      expectedVersion: 0,
      prevHash: null,
      causeId: "msg_newer",
      context: context(),
    });
    const { hash, ...unsealed } = appended.envelopes[0]!;
    const routed = { eventType: "order.paid", strategy: "fanout" as const, registrySeq: 1, ...boundCandidates([]), targets: [] };
    const { json } = sealAndSerialise({ ...unsealed, id: "msg_newer:routing:0", type: "routing.decided", schemaVersion: 99, data: routed, prevHash: hash });
    await streams.js.publish(store.subjectOf(ref), json);
    await expect(store.load(ref, messageDecider, { fresh: true })).rejects.toBeInstanceOf(NewerEventVersionError);
  });

  it("puts the event type in a header and the envelope, never in the subject", async () => {
    const ref = tenantRef("ten_header");
    const { lastSeq } = await store.append(ref, created("h"), { expectedVersion: 0, prevHash: null, causeId: "hdr", context: context() });
    const message = await streams.jsm.streams.getMessage(streams.topology.stream, { seq: lastSeq });
    expect(message?.subject).toBe(`${streams.topology.prefix}.evt.ten_header.cmd.tenant.ten_header`);
    expect(message?.header.get("Zen-Event-Type")).toBe("tenant.created");
    expect(message?.json<{ type: string }>().type).toBe("tenant.created");
  });
});
