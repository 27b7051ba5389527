import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestStreams, type TestStreams } from "../test/support/nats.js";
import { seed } from "../test/support/spine.js";
import { createEventStore } from "./event-store.js";
import { createMessagePayloads, MessageNotFoundError } from "./message-payloads.js";

const TENANT = "ten_payloads";

describe("message payloads", () => {
  let streams: TestStreams;
  let messageSeq: number;

  beforeAll(async () => {
    streams = await createTestStreams();
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    ({ lastSeq: messageSeq } = await seed(store)(TENANT, "message", "msg_p1", [
      { type: "message.received", data: { eventType: "order.paid", payload: { amount: 42 } } },
    ]));
  });
  afterAll(async () => {
    await streams.cleanup();
  });

  const payloadsWithCountedReads = (maxBytes?: number) => {
    const payloads = createMessagePayloads({ jsm: streams.jsm, topology: streams.topology, maxBytes });
    const reads = vi.spyOn(streams.jsm.direct, "getMessage");
    return { payloads, reads };
  };

  it("reads a message's payload once, by its sequence, however many of its deliveries ask at once", async () => {
    const { payloads, reads } = payloadsWithCountedReads();
    try {
      const ref = { tenantId: TENANT, messageId: "msg_p1", messageSeq };
      const answers = await Promise.all(Array.from({ length: 20 }, () => payloads.payloadOf(ref)));
      expect(answers.every((payload) => payload.amount === 42)).toBe(true);
      expect(await payloads.payloadOf(ref)).toEqual({ amount: 42 });
      expect(reads).toHaveBeenCalledTimes(1);
    } finally {
      reads.mockRestore();
    }
  });

  it("answers what the router remembered without reading the stream", async () => {
    const { payloads, reads } = payloadsWithCountedReads();
    try {
      payloads.remember({ tenantId: TENANT, messageId: "msg_routed", messageSeq: 10_000 }, { routed: true }, 100);
      expect(await payloads.payloadOf({ tenantId: TENANT, messageId: "msg_routed", messageSeq: 10_000 })).toEqual({ routed: true });
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });

  it("checks every reference against the event, also one asking while a read for the same sequence is under way", async () => {
    const payloads = createMessagePayloads({ jsm: streams.jsm, topology: streams.topology });
    const [right, wrongTenant, wrongMessage] = await Promise.allSettled([
      payloads.payloadOf({ tenantId: TENANT, messageId: "msg_p1", messageSeq }),
      payloads.payloadOf({ tenantId: "ten_else", messageId: "msg_p1", messageSeq }),
      payloads.payloadOf({ tenantId: TENANT, messageId: "msg_other", messageSeq }),
    ]);
    expect(right).toEqual({ status: "fulfilled", value: { amount: 42 } });
    expect(wrongTenant).toMatchObject({ status: "rejected", reason: expect.any(MessageNotFoundError) });
    expect(wrongMessage).toMatchObject({ status: "rejected", reason: expect.any(MessageNotFoundError) });
  });

  it("refuses a reference whose sequence holds another message, another tenant's, or nothing", async () => {
    const payloads = createMessagePayloads({ jsm: streams.jsm, topology: streams.topology });
    await expect(payloads.payloadOf({ tenantId: TENANT, messageId: "msg_other", messageSeq })).rejects.toBeInstanceOf(MessageNotFoundError);
    await expect(payloads.payloadOf({ tenantId: "ten_else", messageId: "msg_p1", messageSeq })).rejects.toBeInstanceOf(MessageNotFoundError);
    await expect(payloads.payloadOf({ tenantId: TENANT, messageId: "msg_p1", messageSeq: messageSeq + 1_000 })).rejects.toBeInstanceOf(MessageNotFoundError);
    // A remembered payload answers only the message it belongs to.
    payloads.remember({ tenantId: TENANT, messageId: "msg_p1", messageSeq }, { amount: 42 }, 100);
    await expect(payloads.payloadOf({ tenantId: "ten_else", messageId: "msg_p1", messageSeq })).rejects.toBeInstanceOf(MessageNotFoundError);
  });

  it("keeps at most its bytes, the least recently used going first", async () => {
    const { payloads, reads } = payloadsWithCountedReads(250);
    try {
      const ref = (n: number) => ({ tenantId: TENANT, messageId: `msg_${n}`, messageSeq: 20_000 + n });
      payloads.remember(ref(1), { n: 1 }, 100);
      payloads.remember(ref(2), { n: 2 }, 100);
      expect(await payloads.payloadOf(ref(1))).toEqual({ n: 1 }); // 1 is now the most recent
      payloads.remember(ref(3), { n: 3 }, 100);
      expect(payloads.size()).toBe(2);
      expect(await payloads.payloadOf(ref(1))).toEqual({ n: 1 });
      expect(await payloads.payloadOf(ref(3))).toEqual({ n: 3 });
      expect(reads).not.toHaveBeenCalled();
      await expect(payloads.payloadOf(ref(2))).rejects.toBeInstanceOf(MessageNotFoundError);
    } finally {
      reads.mockRestore();
    }
  });
});
