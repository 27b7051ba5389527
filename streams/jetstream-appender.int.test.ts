import { JetStreamApiError } from "@nats-io/jetstream";
import { connect, headers, NoRespondersError, TimeoutError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestStreams, TEST_NATS_URL, type TestStreams } from "../test/support/nats.js";
import { createJetStreamAppender, type JetStreamAppender } from "./jetstream-appender.js";

describe("JetStream appender", () => {
  let streams: TestStreams;
  let appender: JetStreamAppender;

  beforeAll(async () => {
    streams = await createTestStreams();
    appender = createJetStreamAppender(streams.nc, 300);
  });
  afterAll(() => streams.cleanup());

  const subject = (name: string) => `${streams.topology.prefix}.evt.ten_a.cmd.tenant.${name}`;
  const withHeaders = (entries: Record<string, string>) => {
    const h = headers();
    for (const [name, value] of Object.entries(entries)) h.set(name, value);
    return h;
  };

  it("answers each of many publishes in flight with its own stream sequence, in publish order", async () => {
    const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => appender.publish(subject(`many${i}`), `{"i":${i}}`, headers())));
    const seqs = acks.map((ack) => ack.seq);
    expect(new Set(seqs).size).toBe(200);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(acks.every((ack) => ack.stream === streams.topology.stream && !ack.duplicate)).toBe(true);
  });

  it("reports a repeated message id as a duplicate of the stored message", async () => {
    const first = await appender.publish(subject("dup"), "{}", withHeaders({ "Nats-Msg-Id": "same-id" }));
    const again = await appender.publish(subject("dup"), "{}", withHeaders({ "Nats-Msg-Id": "same-id" }));
    expect(again).toEqual({ stream: first.stream, seq: first.seq, duplicate: true });
  });

  it("rejects a failed expectation with the server's JetStream error code", async () => {
    await appender.publish(subject("expect"), "{}", headers());
    const failed = await appender.publish(subject("expect"), "{}", withHeaders({ "Nats-Expected-Last-Subject-Sequence": "0" })).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(JetStreamApiError);
    expect((failed as JetStreamApiError).code).toBe(10071);
  });

  it("rejects a subject no stream holds as having no responders", async () => {
    const failed = await appender.publish(`${streams.topology.prefix}.nostream`, "{}", headers()).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(NoRespondersError);
  });

  it("times out a publish nobody answers", async () => {
    const silent = `${streams.topology.prefix}.silent`;
    const subscription = streams.nc.subscribe(silent);
    try {
      const started = Date.now();
      const failed = await appender.publish(silent, "{}", headers()).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    } finally {
      subscription.unsubscribe();
    }
  });

  it("expires a publish still unanswered when the connection comes back, long before its timeout", async () => {
    const nc = await connect({ servers: TEST_NATS_URL, reconnectTimeWait: 50 });
    const silent = `${streams.topology.prefix}.silent-reconnect`;
    const subscription = streams.nc.subscribe(silent);
    try {
      await streams.nc.flush();
      const patient = createJetStreamAppender(nc, 60_000);
      const started = Date.now();
      const unanswered = patient.publish(silent, "{}", headers()).catch((error: unknown) => error);
      await nc.flush();
      await nc.reconnect();
      expect(await unanswered).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      subscription.unsubscribe();
      await nc.close();
    }
  });
});
