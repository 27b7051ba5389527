import { headers as natsHeaders } from "@nats-io/transport-node";
import type { JsMsg } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { createTestStreams, type TestStreams } from "../test/support/nats.js";
import { eventually } from "../test/support/receiver.js";
import { ack, retryLater, type Settlement } from "./consumers.js";
import { createReactor, type Reactor } from "./reactor.js";

const silent = { warn: () => undefined, error: () => undefined };

describe("the reactor every role consumes with", () => {
  let streams: TestStreams;
  const running: Reactor[] = [];
  let subjectNo = 0;

  beforeAll(async () => {
    streams = await createTestStreams();
  });
  afterAll(async () => {
    for (const reactor of running) await reactor.stop();
    await streams.cleanup();
  });

  /** A reactor on its own subject and durable, handling `trigger` with `handle`. */
  async function reactorOn(handle: (message: JsMsg) => Promise<Settlement>, options: { concurrency?: number; ackWaitMs?: number; errorDelayMs?: number } = {}) {
    const subject = `${streams.topology.prefix}.evt.ten_r.dlv.delivery.r${++subjectNo}`;
    const reactor = createReactor(
      {
        js: streams.js,
        jsm: streams.jsm,
        stream: streams.topology.stream,
        durable: `REACTOR_TEST_${subjectNo}`,
        filterSubject: subject,
        ackWaitMs: options.ackWaitMs ?? 5_000,
        maxAckPending: 1_000,
        concurrency: options.concurrency ?? 16,
        errorDelayMs: options.errorDelayMs,
        logger: silent,
        failureMessage: "test handler failed",
      },
      { triggers: new Set(["test.trigger"]), handle },
    );
    await reactor.start();
    running.push(reactor);
    const publish = async (type: string, n: number) => {
      const headers = natsHeaders();
      headers.set(EVENT_HEADERS.type, type);
      await streams.js.publish(subject, JSON.stringify({ n }), { headers });
    };
    const info = () => streams.jsm.consumers.info(streams.topology.stream, `REACTOR_TEST_${subjectNo}`);
    return { reactor, publish, info };
  }

  it("acks the filter's other event types unread and hands over only the triggers", async () => {
    const seen: number[] = [];
    const { publish, info } = await reactorOn(async (message) => (seen.push(message.json<{ n: number }>().n), ack));
    await publish("test.other", 1);
    await publish("test.trigger", 2);
    await publish("test.other", 3);
    await eventually(
      async () => (await info()).ack_floor.stream_seq > 0 && (await info()).num_ack_pending === 0 && seen.length === 1 && (await info()).num_pending === 0,
      10_000,
      "all three settled",
    );
    expect(seen).toEqual([2]);
  });

  it("applies each settlement: nak(delay) comes back after the delay, a throw after the error delay", async () => {
    const arrivals: Array<{ n: number; at: number }> = [];
    const { publish } = await reactorOn(
      async (message) => {
        const { n } = message.json<{ n: number }>();
        arrivals.push({ n, at: Date.now() });
        if (message.info.deliveryCount > 1) return ack;
        if (n === 1) return retryLater(600);
        throw new Error("first delivery fails");
      },
      { errorDelayMs: 300 },
    );
    const sentAt = Date.now();
    await publish("test.trigger", 1);
    await publish("test.trigger", 2);
    await eventually(() => arrivals.length === 4, 10_000, "both messages twice");
    const second = (n: number) => arrivals.filter((a) => a.n === n)[1]!.at - sentAt;
    expect(second(1)).toBeGreaterThanOrEqual(550);
    expect(second(2)).toBeGreaterThanOrEqual(250);
    expect(second(2)).toBeLessThan(second(1));
  });

  it("holds at most `concurrency` messages at once, pulling more as handlers finish", async () => {
    let inHand = 0;
    let most = 0;
    let done = 0;
    const { publish } = await reactorOn(
      async () => {
        most = Math.max(most, ++inHand);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inHand--;
        done++;
        return ack;
      },
      { concurrency: 4 },
    );
    await Promise.all(Array.from({ length: 40 }, (_, n) => publish("test.trigger", n)));
    await eventually(() => done === 40, 10_000, "40 handled");
    expect(most).toBe(4);
  });

  it("keeps a message held past its ack wait from being redelivered (working), and stop() waits for it", async () => {
    let deliveries = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { reactor, publish } = await reactorOn(
      async () => {
        deliveries++;
        await held;
        return ack;
      },
      { ackWaitMs: 1_000 },
    );
    await publish("test.trigger", 1);
    await eventually(() => deliveries === 1, 5_000, "the first delivery");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(deliveries).toBe(1);
    let stopped = false;
    const stopping = reactor.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(reactor.running()).toBe(false);
  });
});
