import { describe, expect, it } from "vitest";
import { decideFanout, deliveryIdFor, endpointIdOf, type RoutableEndpoint } from "./fanout.js";

const endpoints: RoutableEndpoint[] = [
  { endpointId: "ep_c", status: "active", eventTypes: ["user.*"] },
  { endpointId: "ep_b", status: "active", eventTypes: ["invoice.*"] },
  { endpointId: "ep_a", status: "active", eventTypes: ["*"] },
  { endpointId: "ep_d", status: "disabled", eventTypes: ["*"] },
  { endpointId: "ep_e", status: "deleted", eventTypes: ["*"] },
];

describe("fanout routing", () => {
  it("targets every active endpoint whose patterns match, sorted by id", () => {
    expect(decideFanout({ messageId: "msg_1", eventType: "invoice.paid", registrySeq: 42, endpoints })).toEqual({
      eventType: "invoice.paid",
      strategy: "fanout",
      registrySeq: 42,
      candidates: [
        { endpointId: "ep_a", matched: true, reason: 'pattern "*" matches' },
        { endpointId: "ep_b", matched: true, reason: 'pattern "invoice.*" matches' },
        { endpointId: "ep_c", matched: false, reason: 'no pattern matches "invoice.paid"' },
        { endpointId: "ep_d", matched: false, reason: "disabled" },
      ],
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
