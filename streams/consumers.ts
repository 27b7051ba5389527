import { AckPolicy, DeliverPolicy, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Envelope } from "../contracts/envelope.js";
import type { StoredEvent } from "./event-store.js";

/** What to do with a message once it has been handled: the one place ack/nak/term is decided. */
export type Settlement = { kind: "ack" } | { kind: "nak"; delayMs: number } | { kind: "term" };

export const ack: Settlement = { kind: "ack" };
export const retryLater = (delayMs: number): Settlement => ({ kind: "nak", delayMs: Math.max(0, Math.round(delayMs)) });

export function settle(message: JsMsg, settlement: Settlement): void {
  switch (settlement.kind) {
    case "ack":
      message.ack();
      return;
    case "nak":
      message.nak(settlement.delayMs);
      return;
    case "term":
      // 2.9 ignores term(reason); the bare form terminates.
      message.term();
      return;
  }
}

export interface DurableConfig {
  durable: string;
  filterSubject: string;
  ackWaitMs: number;
  maxAckPending: number;
}

/** Creates or updates a durable pull consumer with explicit acks and unlimited redelivery. */
export async function ensureDurable(jsm: JetStreamManager, stream: string, config: DurableConfig): Promise<void> {
  const wanted = {
    durable_name: config.durable,
    filter_subject: config.filterSubject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: config.ackWaitMs * 1_000_000,
    max_deliver: -1,
    max_ack_pending: config.maxAckPending,
  };
  try {
    await jsm.consumers.info(stream, config.durable);
    await jsm.consumers.update(stream, config.durable, wanted);
  } catch {
    await jsm.consumers.add(stream, wanted);
  }
}

export function toStoredEvent(message: JsMsg): StoredEvent {
  return { seq: message.seq, envelope: message.json<Envelope>() };
}
