import { headers as natsHeaders } from "@nats-io/transport-node";
import { ConnectionError, TimeoutError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { createTestStreams, TEST_NATS_URL, type TestStreams } from "../test/support/nats.js";
import { eventually } from "../test/support/receiver.js";
import { ack, retryLater, type Settlement } from "./consumers.js";
import type { Parking } from "./parking.js";
import { connectStreams, type Streams } from "./connection.js";
import { createReactor, type Reactor, type ReactorMessage } from "./reactor.js";
import { createUnfinishedHandlings, type UnfinishedHandlings } from "./unfinished-handlings.js";

/** Parking that records what it parked, with no replays; its marks of unfinished handlings are the real ones. */
function recordingParking(maxFailures: number, unfinished: UnfinishedHandlings) {
  const parked: Array<{ n: number; reason: string; failures: number }> = [];
  const parking: Parking = {
    maxFailures,
    unfinished,
    park: async (message, failure) => void parked.push({ n: message.json<{ n: number }>().n, reason: failure.reason, failures: failure.failures }),
    replays: () => ({ start: async () => undefined, running: () => true, stop: async () => undefined }),
  };
  return { parking, parked };
}

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

  const unfinished = () => createUnfinishedHandlings(streams.js, streams.topology, `test${subjectNo}`);

  /**
   * A reactor on its own subject and durable, handling `trigger` with `handle`; with `on`, a
   * reactor of another process (its own connection) on the durable of reactor number `on.no`.
   */
  async function reactorOn(
    handle: (message: ReactorMessage) => Promise<Settlement>,
    options: { concurrency?: number; ackWaitMs?: number; errorDelayMs?: number; handlerTimeoutMs?: number; parking?: Parking } = {},
    on: { no: number; connection: Streams } = { no: ++subjectNo, connection: streams },
  ) {
    const subject = `${streams.topology.prefix}.evt.ten_r.dlv.delivery.r${on.no}`;
    const reactor = createReactor(
      {
        js: on.connection.js,
        jsm: on.connection.jsm,
        stream: streams.topology.stream,
        durable: `REACTOR_TEST_${on.no}`,
        filterSubject: subject,
        ackWaitMs: options.ackWaitMs ?? 5_000,
        maxAckPending: 1_000,
        concurrency: options.concurrency ?? 16,
        errorDelayMs: options.errorDelayMs,
        handlerTimeoutMs: options.handlerTimeoutMs,
        parking: options.parking,
        logger: silent,
        failureMessage: "test handler failed",
      },
      { triggers: new Set(["test.trigger"]), handle },
    );
    await reactor.start();
    if (on.connection === streams) running.push(reactor);
    const publish = async (type: string, n: number) => {
      const headers = natsHeaders();
      headers.set(EVENT_HEADERS.type, type);
      await streams.js.publish(subject, JSON.stringify({ n }), { headers });
    };
    const info = () => streams.jsm.consumers.info(streams.topology.stream, `REACTOR_TEST_${on.no}`);
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

  it("parks a message after its bound of failures in a row, and does not count NATS being away", async () => {
    const { parking, parked } = recordingParking(3, unfinished());
    const tries = new Map<number, number>();
    const handled: number[] = [];
    const { publish, info } = await reactorOn(
      async (message) => {
        const { n } = message.json<{ n: number }>();
        const tried = (tries.get(n) ?? 0) + 1;
        tries.set(n, tried);
        if (n === 1) throw new Error("a bug");
        // NATS away for 5 tries (more than the bound), then back: never parked.
        if (n === 2 && tried <= 5) throw tried % 2 ? new ConnectionError("disconnected") : new TimeoutError();
        handled.push(n);
        return ack;
      },
      { errorDelayMs: 50, parking },
    );
    await publish("test.trigger", 1);
    await publish("test.trigger", 2);
    await eventually(async () => parked.length === 1 && handled.includes(2), 10_000, "the bug to be parked and the other handled");
    expect(parked).toEqual([{ n: 1, reason: "handler_failed", failures: 3 }]);
    expect(tries.get(1)).toBe(3);
    expect(tries.get(2)).toBe(6);
    await eventually(async () => (await info()).num_ack_pending === 0, 5_000, "nothing held");
    await new Promise((r) => setTimeout(r, 300));
    expect(tries.get(1)).toBe(3); // terminated: it does not come back
  });

  it("frees the slot of a handler that outlives its deadline, and parks the message after its bound", async () => {
    const { parking, parked } = recordingParking(2, unfinished());
    const handled: number[] = [];
    const { publish } = await reactorOn(
      async (message) => {
        const { n } = message.json<{ n: number }>();
        if (n === 1) return new Promise<Settlement>(() => undefined); // hangs forever
        handled.push(n);
        return ack;
      },
      { concurrency: 1, errorDelayMs: 50, handlerTimeoutMs: 200, parking },
    );
    await publish("test.trigger", 1);
    await publish("test.trigger", 2);
    await eventually(async () => parked.length === 1 && handled.includes(2), 10_000, "the hanging one parked and the next handled");
    expect(parked).toEqual([{ n: 1, reason: "handler_timeout", failures: 2 }]);
  });

  it("parks a message whose processes never finish it (each died holding it), counting across processes, and not the one that died beside it", async () => {
    const no = ++subjectNo;
    const { parking: shared, parked } = recordingParking(2, createUnfinishedHandlings(streams.js, streams.topology, `test${no}`));
    const handled: number[] = [];
    let takes = 0;
    /** One process: the poison message (1) it holds until it dies; a slow one (2) it finishes in 0.7 s (within a quarantine turn); the rest at once. */
    const processTaking = async () => {
      const connection = await connectStreams(TEST_NATS_URL, `reactor-test-${no}`);
      // Its marks go through its own connection: a process that died clears none.
      const parking = { ...shared, unfinished: createUnfinishedHandlings(connection.js, streams.topology, `test${no}`) };
      const taker = await reactorOn(
        async (message) => {
          const { n } = message.json<{ n: number }>();
          if (n === 1) {
            takes++;
            return new Promise<Settlement>(() => undefined);
          }
          if (n === 2) await new Promise((resolve) => setTimeout(resolve, 700));
          // A process that died finishes nothing (its handlers may still run out in this test's one process).
          if (!connection.nc.isClosed()) handled.push(n);
          return ack;
        },
        { ackWaitMs: 1_000, parking },
        { no, connection },
      );
      return { connection, taker };
    };
    let current = await processTaking();
    await current.taker.publish("test.trigger", 1);
    await current.taker.publish("test.trigger", 2);
    // Four processes take it and die with it (two ordinary takeovers, then two marked), and a fifth parks it.
    for (let died = 1; died <= 4; died++) {
      await eventually(() => takes === died, 10_000, `process ${died} to take the poison message`);
      await current.taker.publish("test.trigger", 100 + died);
      await eventually(() => handled.includes(100 + died), 10_000, `process ${died} to handle another message meanwhile`);
      await current.connection.nc.close(); // the crash: nothing settled, the server takes its messages back after the ack wait
      current = await processTaking();
    }
    await eventually(() => parked.length === 1 && handled.includes(2), 15_000, "the fifth process to park it, and to finish the slow one");
    expect(parked).toEqual([{ n: 1, reason: "never_finished", failures: 2 }]);
    expect(takes).toBe(4);
    await current.taker.publish("test.trigger", 200);
    await eventually(() => handled.includes(200), 10_000, "the survivor to go on handling");
    await eventually(async () => (await current.taker.info()).num_ack_pending === 0, 5_000, "nothing held");
    await current.taker.reactor.stop();
    await current.connection.nc.close();
  });
});
