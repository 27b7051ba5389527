import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { startPrivateNats, type PrivateNats } from "../test/support/private-nats.js";
import { eventually } from "../test/support/receiver.js";
import { connectStreams, ensureEventStream, type Streams } from "./connection.js";
import { ack } from "./consumers.js";
import { createReactor, type Reactor } from "./reactor.js";
import { createTopology } from "./topology.js";

const silent = { warn: () => undefined, error: () => undefined };

describe("a reactor across a NATS restart", () => {
  let nats: PrivateNats;
  let streams: Streams;
  let reactor: Reactor;
  const topology = createTopology("restart");
  const subject = `${topology.prefix}.evt.ten_r.dlv.delivery.d1`;
  const handled: number[] = [];

  beforeAll(async () => {
    nats = await startPrivateNats();
    streams = await connectStreams(nats.url, "reactor-restart-test");
    await ensureEventStream(streams.jsm, topology);
    reactor = createReactor(
      {
        js: streams.js,
        jsm: streams.jsm,
        stream: topology.stream,
        durable: "RESTART_TEST",
        filterSubject: subject,
        ackWaitMs: 6_000,
        maxAckPending: 1_000,
        concurrency: 16,
        logger: silent,
        failureMessage: "test handler failed",
      },
      { triggers: new Set(["test.trigger"]), handle: async (message) => (handled.push(message.json<{ n: number }>().n), ack) },
    );
    await reactor.start();
  });
  afterAll(async () => {
    await reactor?.stop();
    await streams?.nc.close();
    await nats?.cleanup();
  });

  const publish = async (n: number) => {
    const headers = natsHeaders();
    headers.set(EVENT_HEADERS.type, "test.trigger");
    await streams.js.publish(subject, JSON.stringify({ n }), { headers });
  };

  it("says it is not running while its pulls go unanswered, and handles messages within seconds of the server's return", async () => {
    await publish(1);
    await eventually(() => handled.includes(1), 5_000, "the first message to be handled");
    expect(reactor.running()).toBe(true);

    await nats.stop({ kill: true });
    await eventually(() => !reactor.running(), 15_000, "the reactor to report that it gets nothing");
    await nats.start();
    const back = Date.now();
    await eventually(
      async () => {
        await publish(2).catch(() => undefined);
        return handled.includes(2);
      },
      15_000,
      "a message published after the restart to be handled",
    );
    expect(Date.now() - back).toBeLessThan(10_000);
    await eventually(() => reactor.running(), 10_000, "the reactor to report running again");
  });
});
