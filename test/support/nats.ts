import { randomBytes } from "node:crypto";
import { connectStreams, ensureEventStream, type Streams } from "../../streams/connection.js";
import { createTopology, type Topology } from "../../streams/topology.js";
import type { Envelope } from "../../contracts/envelope.js";

export const TEST_NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

/** A unique stream prefix per test file, so runs never see each other's streams or consumers. */
export const uniquePrefix = (): string => `t${randomBytes(5).toString("hex")}`;

export interface TestStreams extends Streams {
  topology: Topology;
  /** Deletes the stream (and so its consumers), then closes the connection. */
  cleanup(): Promise<void>;
}

/** Connects to the machine's NATS and creates an event stream under a fresh prefix. */
export async function createTestStreams(prefix = uniquePrefix()): Promise<TestStreams> {
  const streams = await connectStreams(TEST_NATS_URL, `test-${prefix}`);
  const topology = createTopology(prefix);
  await ensureEventStream(streams.jsm, topology);
  return {
    ...streams,
    topology,
    async cleanup() {
      await streams.nc.close();
      await deleteTestStream(prefix);
    },
  };
}

/** Deletes every stream of `prefix`: the event stream (consumers go with it) and KV buckets. */
export async function deleteTestStream(prefix: string): Promise<void> {
  const streams = await connectStreams(TEST_NATS_URL, `cleanup-${prefix}`);
  const topology = createTopology(prefix);
  for await (const name of streams.jsm.streams.names()) {
    if (name === topology.stream || name.startsWith(`KV_${topology.bucketName("")}`)) {
      await streams.jsm.streams.delete(name).catch(() => false);
    }
  }
  await streams.nc.close();
}

/** Every event of a stream, oldest first, read with an ordered consumer (what an auditor does). */
export async function readAllEvents(streams: Pick<Streams, "js" | "jsm">, topology: Topology): Promise<Array<{ seq: number; subject: string; envelope: Envelope }>> {
  const info = await streams.jsm.streams.info(topology.stream);
  const last = info.state.last_seq;
  const events: Array<{ seq: number; subject: string; envelope: Envelope }> = [];
  if (last === 0) return events;
  const consumer = await streams.js.consumers.get(topology.stream, { filter_subjects: topology.allEvents });
  const messages = await consumer.consume({ max_messages: 1_000 });
  for await (const message of messages) {
    events.push({ seq: message.seq, subject: message.subject, envelope: message.json<Envelope>() });
    if (message.seq >= last || message.info.pending === 0) break;
  }
  await messages.close();
  return events;
}

/**
 * Every stored message of every stream of `prefix` (the event stream and each KV bucket), raw: its
 * subject, headers and data as text, exactly as NATS keeps them. Deleted or purged sequences are skipped.
 */
export async function rawMessagesOf(prefix: string): Promise<Array<{ stream: string; seq: number; subject: string; text: string }>> {
  const streams = await connectStreams(TEST_NATS_URL, `raw-${prefix}`);
  const topology = createTopology(prefix);
  const messages: Array<{ stream: string; seq: number; subject: string; text: string }> = [];
  try {
    for await (const name of streams.jsm.streams.names()) {
      if (name !== topology.stream && !name.startsWith(`KV_${topology.bucketName("")}`)) continue;
      const { state } = await streams.jsm.streams.info(name);
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
        const message = await streams.jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (!message) continue;
        const headers = message.header ? [...message.header.keys()].map((k) => `${k}: ${message.header!.get(k)}`).join("\n") : "";
        messages.push({ stream: name, seq, subject: message.subject, text: `${headers}\n${message.string()}` });
      }
    }
  } finally {
    await streams.nc.close();
  }
  return messages;
}
