import { describe, expect, it } from "vitest";
import { fold } from "../decider.js";
import { candidateSetDigest } from "../routing/candidate-set.js";
import { given } from "../testing/given.js";
import { messageDecider, type MessageCommand, type MessageEvent } from "./message.js";

const receive: MessageCommand = { type: "ReceiveMessage", eventType: "invoice.paid", payload: { id: 1 }, eventId: "evt_1" };
const received: MessageEvent = {
  type: "message.received",
  data: { eventType: "invoice.paid", payload: { id: 1 }, eventId: "evt_1" },
};
const route: MessageCommand = {
  type: "DecideRouting",
  messageId: "msg_1",
  registrySeq: 7,
  endpoints: [
    { endpointId: "ep_a", status: "active", eventTypes: ["invoice.*"] },
    { endpointId: "ep_b", status: "active", eventTypes: ["user.*"] },
  ],
};
const candidates = [
  { endpointId: "ep_a", matched: true, reason: 'pattern "invoice.*" matches' },
  { endpointId: "ep_b", matched: false, reason: 'no pattern matches "invoice.paid"' },
];
const routed: MessageEvent = {
  type: "routing.decided",
  data: {
    eventType: "invoice.paid",
    strategy: "fanout",
    registrySeq: 7,
    candidates,
    candidateSet: { count: 2, matched: 1, digest: candidateSetDigest(candidates) },
    targets: [{ endpointId: "ep_a", deliveryId: "dlv_1_a" }],
  },
};

describe("message", () => {
  it("receives a message", () => {
    given(messageDecider, []).when(receive).then([received]);
  });

  it("leaves out an absent eventId", () => {
    given(messageDecider, [])
      .when({ type: "ReceiveMessage", eventType: "x", payload: {} })
      .then([{ type: "message.received", data: { eventType: "x", payload: {} } }]);
  });

  it("receiving again changes nothing", () => {
    given(messageDecider, [received]).when(receive).then([]);
  });

  it("routes a received message by its own event type", () => {
    given(messageDecider, [received]).when(route).then([routed]);
    expect(fold(messageDecider, [received, routed])).toEqual({ status: "routed", ...received.data, routing: routed.data });
  });

  it("routes once: a redelivered message keeps its first decision", () => {
    given(messageDecider, [received, routed])
      .when({ ...route, endpoints: [] })
      .then([]);
  });

  it("refuses to route a message never received", () => {
    given(messageDecider, []).when(route).thenThrows("not_found");
  });
});
