import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Envelope } from "../contracts/envelope.js";
import type { StoredEvent } from "./event-store.js";

/**
 * The `expires` of every consume loop's pull requests (the client's default is 30 s). It also sets
 * how fast a loop recovers from a NATS restart: on reconnect the client re-checks its consumer and,
 * while the server is still coming back, waits one `expires` before asking again, so with the
 * default nothing was consumed for up to 40 s after the server was back. At 2 s deliveries at a low
 * rate stalled now and then for 2–3 s, so not shorter.
 */
export const CONSUME_EXPIRES_MS = 5_000;
/**
 * The idle heartbeat every consume loop asks the server for. Two missed make the client pull again
 * (after checking its consumer): a pull lost with a cluster node whose consumer leader moved, or
 * to a consumer recreated elsewhere, is noticed after 2 s, not after the default's 5 s (half of
 * `expires`, twice).
 */
export const CONSUME_HEARTBEAT_MS = 1_000;
/** The pull settings of every consume loop: see the two above. */
export const CONSUME_PULLS = { expires: CONSUME_EXPIRES_MS, idle_heartbeat: CONSUME_HEARTBEAT_MS } as const;

/** What a consume loop's traffic says of its server side; `progressed()` is called on each message. */
export interface ConsumeWatch {
  /** True after missed heartbeats (or a consumer or stream gone), or a silence of {@link SILENCE_LIMIT_MS}, until a heartbeat or a message. */
  stalled(): boolean;
  progressed(): void;
  /**
   * True once the loop was stopped because the client recreated its ordered consumer (after a
   * server restart): its owner opens a fresh one after the last message it handled.
   */
  recreated(): boolean;
}

/**
 * A loop that got neither a message nor a heartbeat for this long has lost its server side: idle
 * pulls get a heartbeat every second, so this is several of them missed. It also covers what
 * the client reports nothing of: while it is disconnected, and while it re-checks its consumer
 * after a reconnect.
 */
const SILENCE_LIMIT_MS = 1.5 * CONSUME_EXPIRES_MS;

/**
 * Watches a consume loop's heartbeats and messages, so readiness can tell a loop that iterates from
 * one that gets nothing: after a NATS restart the loop lives on while its pulls go unanswered.
 */
export function watchConsume(messages: ConsumerMessages): ConsumeWatch {
  let lastSignAt = Date.now();
  let missed = false;
  let recreated = false;
  const progressed = () => {
    lastSignAt = Date.now();
    missed = false;
  };
  void (async () => {
    for await (const note of messages.status()) {
      if (note.type === "heartbeat") progressed();
      else if (note.type === "heartbeats_missed" || note.type === "consumer_not_found" || note.type === "stream_not_found" || note.type === "no_responders") {
        missed = true;
      } else if (note.type === "ordered_consumer_recreated") {
        // @nats-io/jetstream 3.3 and 3.4 pull a recreated ordered consumer with a batch of 0 (the
        // old pulls still counted as pending): nothing more comes until two heartbeats are missed.
        recreated = true;
        messages.stop();
      }
    }
  })().catch(() => undefined);
  return { stalled: () => missed || Date.now() - lastSignAt > SILENCE_LIMIT_MS, progressed, recreated: () => recreated };
}

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

export function toStoredEvent(message: Pick<JsMsg, "seq" | "json">): StoredEvent {
  return { seq: message.seq, envelope: message.json<Envelope>() };
}
