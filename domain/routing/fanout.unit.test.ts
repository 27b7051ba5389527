import { describe, expect, it } from "vitest";
import { MAX_LISTED_CANDIDATES } from "../../contracts/events.js";
import { MAX_PATTERN_LENGTH } from "../endpoint/patterns.js";
import { messageDecider, type MessageEvent } from "../message/message.js";
import { given } from "../testing/given.js";
import { candidateSetDigest } from "./candidate-set.js";
import { decideFanout, deliveryIdFor, endpointIdOf, type RoutableEndpoint } from "./fanout.js";

const endpoints: RoutableEndpoint[] = [
  { endpointId: "ep_c", status: "active", eventTypes: ["user.*"] },
  { endpointId: "ep_b", status: "active", eventTypes: ["invoice.*"] },
  { endpointId: "ep_a", status: "active", eventTypes: ["*"] },
  { endpointId: "ep_d", status: "disabled", eventTypes: ["*"] },
  { endpointId: "ep_e", status: "deleted", eventTypes: ["*"] },
];

describe("fanout routing", () => {
  it("targets every active endpoint whose patterns match, and lists a small registry's every candidate, sorted by id", () => {
    const candidates = [
      { endpointId: "ep_a", matched: true, reason: 'pattern "*" matches' },
      { endpointId: "ep_b", matched: true, reason: 'pattern "invoice.*" matches' },
      { endpointId: "ep_c", matched: false, reason: 'no pattern matches "invoice.paid"' },
      { endpointId: "ep_d", matched: false, reason: "disabled" },
    ];
    expect(decideFanout({ messageId: "msg_1", eventType: "invoice.paid", registrySeq: 42, endpoints })).toEqual({
      eventType: "invoice.paid",
      strategy: "fanout",
      registrySeq: 42,
      candidates,
      candidateSet: { count: 4, matched: 2, digest: candidateSetDigest(candidates) },
      targets: [
        { endpointId: "ep_a", deliveryId: "dlv_1_a" },
        { endpointId: "ep_b", deliveryId: "dlv_1_b" },
      ],
    });
  });

  it("does not depend on the order endpoints come in", () => {
    const input = { messageId: "msg_1", eventType: "user.created", registrySeq: 1 };
    expect(decideFanout({ ...input, endpoints: [...endpoints].reverse() })).toEqual(decideFanout({ ...input, endpoints }));
  });

  it("decides no targets when nothing is registered", () => {
    expect(decideFanout({ messageId: "msg_1", eventType: "x", registrySeq: 1, endpoints: [] })).toMatchObject({
      candidates: [],
      candidateSet: { count: 0, matched: 0 },
      targets: [],
    });
  });

  it("derives the delivery id from the message and endpoint ids", () => {
    expect(deliveryIdFor("msg_01HX", "ep_9Z")).toBe("dlv_01HX_9Z");
    expect(deliveryIdFor("msg_01HX", "ep_9Z")).toBe(deliveryIdFor("msg_01HX", "ep_9Z"));
    expect(endpointIdOf(deliveryIdFor("msg_01HX", "ep_9Z"))).toBe("ep_9Z");
    expect(deliveryIdFor("01HX", "9Z")).toBe("dlv_01HX_9Z");
  });
});

describe("fanout routing in a large registry", () => {
  /** The longest event type two different 200-character patterns both match: an exact one and a prefix. */
  const eventType = `${"t".repeat(MAX_PATTERN_LENGTH - 2)}.x`;
  const patterns = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? eventType : `${"t".repeat(MAX_PATTERN_LENGTH - 2)}.*`));
  /** Ids as long as the platform's (`ep_` and a ULID), in a shuffled order. */
  const endpointId = (i: number) => `ep_01J${String(i).padStart(23, "0")}`;
  const registry = (count: number): RoutableEndpoint[] =>
    Array.from({ length: count }, (_, i) => ({ endpointId: endpointId((i * 7919) % count), status: "active" as const, eventTypes: patterns }));
  const messageId = "msg_01JAAAAAAAAAAAAAAAAAAAAAAA";
  const received: MessageEvent = { type: "message.received", data: { eventType, payload: {} } };

  it("stays far under NATS's 1 MiB max_payload: 5,000 endpoints of 100 matching 200-character patterns", () => {
    const [decision] = given(messageDecider, [received])
      .when({ type: "DecideRouting", messageId, registrySeq: 9, endpoints: registry(5_000) })
      .decided();
    if (decision?.type !== "routing.decided") throw new Error("expected a routing decision");
    const { candidates, candidateSet, targets } = decision.data;
    expect(Buffer.byteLength(JSON.stringify(decision.data))).toBeLessThan(768 * 1024);
    expect(candidates).toHaveLength(MAX_LISTED_CANDIDATES);
    expect(candidates.map((c) => c.endpointId)).toEqual(Array.from({ length: MAX_LISTED_CANDIDATES }, (_, i) => endpointId(i)));
    expect(candidates[0]).toEqual({ endpointId: endpointId(0), matched: true, reason: `pattern ${JSON.stringify(eventType)} matches` });
    expect(candidateSet).toMatchObject({ count: 5_000, matched: 5_000 });
    expect(targets).toHaveLength(5_000);
    expect(targets.map((t) => t.endpointId)).toEqual(Array.from({ length: 5_000 }, (_, i) => endpointId(i)));
    expect(targets.every((t) => t.deliveryId === deliveryIdFor(messageId, t.endpointId))).toBe(true);
  });

  it("lists exactly the first candidates by id once the registry has more, and describes them all", () => {
    const endpoints = registry(MAX_LISTED_CANDIDATES + 1).map((e, i) => (i % 2 === 0 ? { ...e, status: "disabled" as const } : e));
    const decision = decideFanout({ messageId, eventType, registrySeq: 9, endpoints });
    expect(decision.candidates.map((c) => c.endpointId)).toEqual(Array.from({ length: MAX_LISTED_CANDIDATES }, (_, i) => endpointId(i)));
    expect(decision.candidateSet.count).toBe(MAX_LISTED_CANDIDATES + 1);
    expect(decision.candidateSet.matched).toBe(decision.targets.length);
  });
});
