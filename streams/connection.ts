import type { NatsConnection } from "@nats-io/transport-node";
import { connectCoalescing } from "./coalescing-transport.js";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Topology } from "./topology.js";

export interface Streams {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * Connects to NATS. `noAsyncTraces` saves two stack-traced Errors per request, about half the
 * client's CPU on the publish path (STACK.md).
 */
export async function connectStreams(url: string, name = "zen-webhooks"): Promise<Streams> {
  const nc = await connectCoalescing({ servers: url.split(","), name, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  try {
    const jsm = await jetstreamManager(nc);
    return { nc, js: jetstream(nc), jsm };
  } catch (error) {
    // No JetStream behind this server (yet): a start-up retry must not leave this connection reconnecting.
    await nc.close();
    throw error;
  }
}

/**
 * Creates the event stream, or updates it to this configuration. Limits-based retention: the log
 * is the system of record, nothing is removed when consumers ack.
 */
export async function ensureEventStream(jsm: JetStreamManager, topology: Topology, replicas = 1): Promise<void> {
  const config = {
    name: topology.stream,
    subjects: [topology.allEvents],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: replicas,
    duplicate_window: 120_000_000_000,
    allow_direct: true,
  };
  try {
    await jsm.streams.info(topology.stream);
    await jsm.streams.update(topology.stream, config);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add(config);
  }
  const info = await jsm.streams.info(topology.stream);
  if (!info.config.allow_direct) throw new Error(`stream ${topology.stream} lacks allow_direct; nats-server 2.9+ is required`);
}

export function isNotFound(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return /not found/i.test(text);
}
