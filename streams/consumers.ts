import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Envelope } from "../contracts/envelope.js";
import type { StoredEvent } from "./event-store.js";

/** What to do with a message once it has been handled: the one place ack/nak/term is decided. */
export type Settlement = { kind: "ack" } | { kind: "nak"; delayMs: number } | { kind: "term" };

export const ack: Settlement = { kind: "ack" };
export const retryLater = (delayMs: number): Settlement => ({ kind: "nak", delayMs: Math.max(0, Math.round(delayMs)) });

export function settle(message: JsMsg, settlement: Settlement): void {
  switch (settlement.kind) {
    case "ack":
      return message.ack();
    case "nak":
      return message.nak(settlement.delayMs);
    case "term":
      // 2.9 ignores term(reason); the bare form terminates.
      return message.term();
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

export interface RunningConsumer {
  /** Stops pulling, waits for handlers in flight, then returns. */
  stop(): Promise<void>;
  /** Resolves when the loop ends. */
  done: Promise<void>;
}

/**
 * Pulls from a durable consumer and runs `handle` on each message with at most `concurrency` in
 * flight; the handler's settlement is applied by {@link settle}. A handler that throws is retried
 * by redelivery after `errorDelayMs`. While a handler runs, `working()` is sent every third of
 * `ackWaitMs`, so the ack wait need only cover a crashed process, not the slowest handler.
 */
export async function runDurable(
  js: JetStreamClient,
  stream: string,
  durable: string,
  options: {
    concurrency: number;
    handle: (message: JsMsg) => Promise<Settlement>;
    onError: (error: unknown, message: JsMsg) => void;
    ackWaitMs: number;
    errorDelayMs?: number;
  },
): Promise<RunningConsumer> {
  const consumer = await js.consumers.get(stream, durable);
  // The client buffers at most this many pulled messages ahead of the handlers.
  const messages = await consumer.consume({ max_messages: Math.min(Math.max(options.concurrency, 64), 1_000) });
  const inFlight = new Set<Promise<void>>();
  let wake: (() => void) | undefined;

  const run = async (message: JsMsg) => {
    const heartbeat = setInterval(() => message.working(), options.ackWaitMs / 3);
    try {
      settle(message, await options.handle(message));
    } catch (error) {
      options.onError(error, message);
      message.nak(options.errorDelayMs ?? 1000);
    } finally {
      clearInterval(heartbeat);
    }
  };

  const done = (async () => {
    for await (const message of messages) {
      while (inFlight.size >= options.concurrency) await new Promise<void>((resolve) => (wake = resolve));
      const task = run(message).finally(() => {
        inFlight.delete(task);
        wake?.();
      });
      inFlight.add(task);
    }
    await Promise.allSettled([...inFlight]);
  })();

  return {
    done,
    async stop() {
      await messages.close();
      await done;
    },
  };
}
