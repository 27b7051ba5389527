import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
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
  /** Resolves when the loop ends for good (after `stop()`). */
  done: Promise<void>;
  /**
   * True while the consume loop iterates. False once it ended without `stop()` (the consumer or its
   * stream was deleted, the subscription failed) until a restart succeeds, and after `stop()`.
   */
  running(): boolean;
}

/** The first wait before re-opening a consume loop that ended; it doubles up to {@link MAX_RESTART_DELAY_MS}. */
export const RESTART_DELAY_MS = 2_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Pulls from a durable consumer and runs `handle` on each message with at most `concurrency` in
 * flight; the handler's settlement is applied by {@link settle}. A handler that throws is retried
 * by redelivery after `errorDelayMs`. While a handler runs, `working()` is sent every third of
 * `ackWaitMs`, so the ack wait need only cover a crashed process, not the slowest handler.
 *
 * The loop ends when the consumer or its stream is deleted (rather than waiting silently for it to
 * come back); it is reported to `onLoopEnd`, `running()` turns false, and the loop is re-opened
 * every {@link RESTART_DELAY_MS} (doubling, at most 30 s) until the consumer exists again. A
 * deleted consumer is not re-created here: that would deliver its filter again from the start.
 */
export async function runDurable(
  js: JetStreamClient,
  stream: string,
  durable: string,
  options: {
    concurrency: number;
    handle: (message: JsMsg) => Promise<Settlement>;
    onError: (error: unknown, message: JsMsg) => void;
    /** The consume loop ended without `stop()`, or could not be re-opened. */
    onLoopEnd?: (error: unknown) => void;
    ackWaitMs: number;
    errorDelayMs?: number;
  },
): Promise<RunningConsumer> {
  const open = async () => {
    const consumer = await js.consumers.get(stream, durable);
    // The client buffers at most this many pulled messages ahead of the handlers.
    return consumer.consume({ max_messages: Math.min(Math.max(options.concurrency, 64), 1_000), abort_on_missing_resource: true });
  };
  let messages: ConsumerMessages = await open();
  let live = true;
  const stopping = new AbortController();
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

  const iterate = async (iter: ConsumerMessages) => {
    for await (const message of iter) {
      while (inFlight.size >= options.concurrency) await new Promise<void>((resolve) => (wake = resolve));
      const task = run(message).finally(() => {
        inFlight.delete(task);
        wake?.();
      });
      inFlight.add(task);
    }
  };

  const done = (async () => {
    let delay = RESTART_DELAY_MS;
    for (;;) {
      try {
        await iterate(messages);
        if (stopping.signal.aborted) break;
        options.onLoopEnd?.(new Error(`the consume loop of ${durable} ended`));
      } catch (error) {
        if (stopping.signal.aborted) break;
        options.onLoopEnd?.(error);
      }
      live = false;
      // Re-open until the consumer exists again or `stop()`; handlers in flight keep running meanwhile.
      for (;;) {
        await sleep(delay, undefined, { signal: stopping.signal, ref: false }).catch(() => undefined);
        if (stopping.signal.aborted) break;
        delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
        try {
          messages = await open();
          if (stopping.signal.aborted) await messages.close();
          live = !stopping.signal.aborted;
          delay = RESTART_DELAY_MS;
          break;
        } catch (error) {
          options.onLoopEnd?.(error);
        }
      }
      if (stopping.signal.aborted) break;
    }
    live = false;
    await Promise.allSettled([...inFlight]);
  })();

  return {
    done,
    running: () => live,
    async stop() {
      stopping.abort();
      await messages.close();
      await done;
    },
  };
}
