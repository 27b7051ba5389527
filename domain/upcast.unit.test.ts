import { describe, expect, it } from "vitest";
import type { Envelope } from "../contracts/envelope.js";
import { EventSchemas, MAX_LISTED_CANDIDATES, RoutingDecided, type RoutingDecidedV1 } from "../contracts/events.js";
import { decideFanout, deliveryIdFor, type RoutableEndpoint } from "./routing/fanout.js";
import { upcastEnvelope } from "./upcast.js";

const stored = (type: string, schemaVersion: number, data: unknown): Envelope => ({
  id: "msg_1:routing:0",
  type,
  schemaVersion,
  tenantId: "ten_1",
  aggregateType: "message",
  aggregateId: "msg_1",
  occurredAt: "2025-01-01T00:00:00.000Z",
  correlationId: "req_1",
  causationId: "msg_1:0",
  actor: { kind: "system", id: "router" },
  data,
  prevHash: "a".repeat(64),
  hash: "b".repeat(64),
});

/** 150 endpoints: even ones take invoices, odd ones users, every fifth is disabled. */
const endpointId = (i: number) => `ep_${String(i).padStart(3, "0")}`;
const registry: RoutableEndpoint[] = Array.from({ length: 150 }, (_, i) => ({
  endpointId: endpointId(i),
  status: i % 5 === 0 ? "disabled" : "active",
  eventTypes: [i % 2 === 0 ? "invoice.*" : "user.*"],
}));

/** The decision version 1 recorded for that registry: every candidate listed. */
const v1: RoutingDecidedV1 = {
  eventType: "invoice.paid",
  strategy: "fanout",
  registrySeq: 42,
  candidates: registry.map((e, i) =>
    e.status === "disabled"
      ? { endpointId: e.endpointId, matched: false, reason: "disabled" }
      : i % 2 === 0
        ? { endpointId: e.endpointId, matched: true, reason: 'pattern "invoice.*" matches' }
        : { endpointId: e.endpointId, matched: false, reason: 'no pattern matches "invoice.paid"' },
  ),
  targets: registry.filter((e, i) => e.status === "active" && i % 2 === 0).map(({ endpointId: id }) => ({ endpointId: id, deliveryId: deliveryIdFor("msg_1", id) })),
};

describe("upcasting", () => {
  it("turns a version-1 routing decision into version 2, as deciding it now would record it", () => {
    const envelope = stored("routing.decided", 1, v1);
    const upcast = upcastEnvelope(envelope);
    expect(upcast.schemaVersion).toBe(2);
    expect(upcast.data).toEqual(decideFanout({ messageId: "msg_1", eventType: "invoice.paid", registrySeq: 42, endpoints: registry }));
    expect(RoutingDecided.parse(upcast.data)).toMatchObject({
      candidates: v1.candidates.slice(0, MAX_LISTED_CANDIDATES),
      candidateSet: { count: 150, matched: 60 },
      targets: v1.targets,
    });
  });

  it("keeps the stored hashes and everything else, and leaves the stored envelope as it is", () => {
    const envelope = stored("routing.decided", 1, v1);
    const copy = structuredClone(envelope);
    const upcast = upcastEnvelope(envelope);
    expect({ ...upcast, schemaVersion: 1, data: v1 }).toEqual(copy);
    expect(envelope).toEqual(copy);
  });

  it("returns a version-2 routing decision and every other event unchanged", () => {
    const current = stored("routing.decided", 2, decideFanout({ messageId: "msg_1", eventType: "invoice.paid", registrySeq: 42, endpoints: registry }));
    expect(upcastEnvelope(current)).toBe(current);
    const received = stored("message.received", 1, { eventType: "invoice.paid", payload: {} });
    expect(upcastEnvelope(received)).toBe(received);
    const unknown = stored("future.thing", 1, { candidates: "not a list" });
    expect(upcastEnvelope(unknown)).toBe(unknown);
  });

  it("reads a version-1 delivery outcome as version 2 without the attempt it settles (the event before it holds that)", () => {
    const outcomes = [
      stored("delivery.succeeded", 1, { attempt: 1, statusCode: 200 }),
      stored("delivery.retry_scheduled", 1, {
        attempt: 1,
        nextAttempt: 2,
        nextAttemptAt: "2025-01-01T00:00:05.000Z",
        delayMs: 5_000,
        errorClass: "server_error",
        reason: "HTTP 500 from receiver",
      }),
      stored("delivery.dead_lettered", 1, { attempt: 0, errorClass: "endpoint_unavailable", reason: "endpoint deleted" }),
    ];
    for (const envelope of outcomes) {
      const upcast = upcastEnvelope(envelope);
      expect(upcast).toEqual({ ...envelope, schemaVersion: 2 });
      expect(EventSchemas[envelope.type as "delivery.succeeded"].parse(upcast.data)).not.toHaveProperty("attempted");
    }
    const current = stored("delivery.succeeded", 2, { attempt: 1, statusCode: 200 });
    expect(upcastEnvelope(current)).toBe(current);
  });

  it("reads a version-1 delivery.scheduled as version 2 naming its message by the sequence it was routed at, its payload's copy kept", () => {
    const v1Data = {
      messageId: "msg_1",
      endpointId: "ep_1",
      eventType: "invoice.paid",
      payload: { amount: 3 },
      messageReceivedAt: "2025-01-01T00:00:00.000Z",
      registrySeq: 42,
    };
    const envelope = stored("delivery.scheduled", 1, v1Data);
    const upcast = upcastEnvelope(envelope);
    expect(upcast).toEqual({ ...envelope, schemaVersion: 2, data: { ...v1Data, messageSeq: 42 } });
    expect(EventSchemas["delivery.scheduled"].parse(upcast.data)).toEqual({ ...v1Data, messageSeq: 42 });
    expect(() => upcastEnvelope(stored("delivery.scheduled", 1, { ...v1Data, payload: undefined }))).toThrow();
    const current = stored("delivery.scheduled", 2, { ...v1Data, payload: undefined, messageSeq: 42 });
    expect(upcastEnvelope(current)).toBe(current);
  });

  it("refuses a malformed version-1 routing decision", () => {
    expect(() => upcastEnvelope(stored("routing.decided", 1, { ...v1, candidates: "all" }))).toThrow();
  });
});
