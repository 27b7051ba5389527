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

/**
 * Bytes of stored events whose payloads are kept (parsed, they take a few times that): room for
 * the messages a healthy pipeline has between routing and sending, 8,000 of 1 KiB.
 */
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

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
  const reading = new Map<number, { ref: MessageRef; payload: Promise<Payload> }>();
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
    const pending = reading.get(ref.messageSeq);
    // Only an asker naming the same message joins a read: another reference is checked by its own.
    if (pending) return pending.ref.messageId === ref.messageId && pending.ref.tenantId === ref.tenantId ? pending.payload : read(ref);
    const payload = read(ref).finally(() => reading.delete(ref.messageSeq));
    reading.set(ref.messageSeq, { ref, payload });
    return payload;
  }

  return { remember, payloadOf, size: () => recent.size };
}

export type MessagePayloads = ReturnType<typeof createMessagePayloads>;
