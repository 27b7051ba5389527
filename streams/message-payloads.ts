import type { JetStreamManager } from "@nats-io/jetstream";
import type { Envelope } from "../contracts/envelope.js";
import type { Topology } from "./topology.js";

/** Where a delivery's message is: its `message.received` at stream sequence `messageSeq`. */
export interface MessageRef {
  tenantId: string;
  messageId: string;
  messageSeq: number;
}

type Payload = Record<string, unknown>;

interface Entry {
  messageId: string;
  tenantId: string;
  payload: Payload;
  bytes: number;
}

/** Bytes of payload kept in memory at most (each entry counted by the size of its stored event). */
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

/** The message is not at the sequence a delivery names: the log and the delivery disagree. */
export class MessageNotFoundError extends Error {
  constructor(ref: MessageRef) {
    super(`message ${ref.messageId} of tenant ${ref.tenantId} is not at stream sequence ${ref.messageSeq}`);
    this.name = "MessageNotFoundError";
  }
}

/**
 * The payloads of the messages a process delivers. A `delivery.scheduled` names its message's event
 * instead of copying the payload, so a fan-out to 100 endpoints stores and parses one payload, not
 * 100: the router remembers each payload it routes (a dispatcher in the same process then reads no
 * event at all), anything else is one direct get by sequence, shared by every delivery of the
 * message asking at once. Bounded by the bytes of the events kept, least recently used first out.
 */
export function createMessagePayloads({ jsm, topology, maxBytes = DEFAULT_MAX_BYTES }: { jsm: JetStreamManager; topology: Topology; maxBytes?: number }) {
  const recent = new Map<number, Entry>();
  const reading = new Map<number, Promise<Payload>>();
  let bytes = 0;

  function remember(ref: MessageRef, payload: Payload, eventBytes: number): void {
    const previous = recent.get(ref.messageSeq);
    if (previous) {
      recent.delete(ref.messageSeq);
      bytes -= previous.bytes;
    }
    recent.set(ref.messageSeq, { messageId: ref.messageId, tenantId: ref.tenantId, payload, bytes: eventBytes });
    bytes += eventBytes;
    for (const [seq, entry] of recent) {
      if (bytes <= maxBytes || recent.size === 1) break;
      recent.delete(seq);
      bytes -= entry.bytes;
    }
  }

  async function read(ref: MessageRef): Promise<Payload> {
    const stored = await jsm.direct.getMessage(topology.stream, { seq: ref.messageSeq });
    const envelope = stored?.json<Envelope>();
    if (!stored || envelope?.type !== "message.received" || envelope.aggregateId !== ref.messageId || envelope.tenantId !== ref.tenantId) {
      throw new MessageNotFoundError(ref);
    }
    const { payload } = envelope.data as { payload: Payload };
    remember(ref, payload, stored.data.length);
    return payload;
  }

  /** The payload of the message `ref` names; rejects with {@link MessageNotFoundError} when the event there is not that message's. */
  function payloadOf(ref: MessageRef): Promise<Payload> {
    const entry = recent.get(ref.messageSeq);
    if (entry && entry.messageId === ref.messageId && entry.tenantId === ref.tenantId) {
      recent.delete(ref.messageSeq);
      recent.set(ref.messageSeq, entry);
      return Promise.resolve(entry.payload);
    }
    let pending = reading.get(ref.messageSeq);
    if (!pending) {
      pending = read(ref).finally(() => reading.delete(ref.messageSeq));
      reading.set(ref.messageSeq, pending);
    }
    return pending;
  }

  return { remember, payloadOf, size: () => recent.size };
}

export type MessagePayloads = ReturnType<typeof createMessagePayloads>;
