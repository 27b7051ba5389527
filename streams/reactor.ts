import { setTimeout as sleep } from "node:timers/promises";
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { CONSUME_PULLS, ensureDurable, settle, watchConsume, type ConsumeWatch, type Settlement } from "./consumers.js";

/** The first wait before re-opening a consume loop that ended; it doubles up to {@link MAX_RESTART_DELAY_MS}. */
export const RESTART_DELAY_MS = 2_000;
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * The ack wait of every reactor's durable: how long the messages a crashed process held wait before
 * another process (or its own restart) takes them over. Short, because a restart should not leave
 * deliveries waiting long; a message held longer (a slow attempt, a lane) is kept by `working()`
 * every second, so only a process that died (or froze) loses its messages to another.
 */
export const TAKEOVER_AFTER_MS = 6_000;
const BEATS_PER_ACK_WAIT = 6;
/** How long a handler may throw before its message comes back (unless the reactor says otherwise). */
const DEFAULT_ERROR_DELAY_MS = 1_000;

/** The logging port: pino's Logger fits. */
export interface ReactorLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** One durable reactor: its consumer, and how many of its messages may be handled at once. */
export interface ReactorConfig {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  durable: string;
  filterSubject: string;
  /** How long a crashed process's messages wait before another process takes them over. */
  ackWaitMs: number;
  maxAckPending: number;
  /** Messages handled at once; the consumer is pulled no faster than they finish (flow control). */
  concurrency: number;
  /** A handler that throws gets its message back after this long (default 1 s). */
  errorDelayMs?: number;
  logger: ReactorLogger;
  /** Logged with a handler's error, e.g. "routing failed; the message will be redelivered". */
  failureMessage: string;
}

/** What a role hands the reactor: which event types it reacts to, and what it does with one. */
export interface ReactorHandler {
  /** Event types (header `Zen-Event-Type`) handled; every other message of the filter is acked unread. */
  triggers: ReadonlySet<string>;
  handle(message: JsMsg): Promise<Settlement>;
}

export interface Reactor {
  /** Creates or updates the durable consumer, then consumes in the background. */
  start(): Promise<void>;
  /**
   * True while the consume loop iterates and its server side answers. False once it ended without
   * `stop()` (the consumer or its stream was deleted, the subscription failed) until a re-open
   * succeeds, while its heartbeats are missed (NATS restarting), and after `stop()`.
   */
  running(): boolean;
  /** Stops pulling, waits for the handlers in flight, then returns. */
  stop(): Promise<void>;
}

/**
 * The one consumer skeleton every reactor (router, dispatcher, replayer) runs on: durable set-up,
 * a pull loop with at most `concurrency` messages in hand, one settlement per message by
 * {@link settle}, `working()` for messages held longer than a sixth of the ack wait (one timer for
 * all), and a loop that re-opens itself (every 2 s, doubling to 30 s) when the consumer or its
 * stream goes away — without re-creating a deleted consumer, which would deliver its filter again.
 */
export function createReactor(config: ReactorConfig, handler: ReactorHandler): Reactor {
  const { js, durable, logger } = config;
  const stopping = new AbortController();
  /** Each message in hand, and when it arrived. */
  const inHand = new Map<JsMsg, number>();
  let messages: ConsumerMessages | undefined;
  let watch: ConsumeWatch | undefined;
  let done: Promise<void> | undefined;
  let live = false;
  let wake: (() => void) | undefined;
  let heartbeat: NodeJS.Timeout | undefined;

  const open = async () => {
    const consumer = await js.consumers.get(config.stream, durable);
    // The client buffers at most this many pulled messages ahead of the handlers.
    const opened = await consumer.consume({
      max_messages: Math.min(Math.max(config.concurrency, 64), 1_000),
      abort_on_missing_resource: true,
      ...CONSUME_PULLS,
    });
    watch = watchConsume(opened);
    return opened;
  };

  const run = async (message: JsMsg) => {
    try {
      settle(message, await handler.handle(message));
    } catch (error) {
      logger.error({ err: error, seq: message.seq, durable }, config.failureMessage);
      message.nak(config.errorDelayMs ?? DEFAULT_ERROR_DELAY_MS);
    } finally {
      inHand.delete(message);
      wake?.();
    }
  };

  const iterate = async (iter: ConsumerMessages) => {
    for await (const message of iter) {
      watch?.progressed();
      const type = message.headers?.get(EVENT_HEADERS.type);
      if (!type || !handler.triggers.has(type)) {
        message.ack();
        continue;
      }
      while (inHand.size >= config.concurrency) await new Promise<void>((resolve) => (wake = resolve));
      inHand.set(message, Date.now());
      void run(message);
    }
  };

  /**
   * Keeps every message held past a sixth of the ack wait from being redelivered elsewhere: beating
   * every sixth, a message gets its first `working()` within a third, so an event loop late by up
   * to two thirds of the ack wait still keeps it.
   */
  const beat = () => {
    const heldSince = Date.now() - config.ackWaitMs / BEATS_PER_ACK_WAIT;
    for (const [message, since] of inHand) if (since <= heldSince) message.working();
  };

  const loop = async () => {
    let delay = RESTART_DELAY_MS;
    for (;;) {
      try {
        await iterate(messages!);
        if (stopping.signal.aborted) break;
        logger.warn({ durable }, "consume loop ended; re-opening it until the consumer answers");
      } catch (error) {
        if (stopping.signal.aborted) break;
        logger.warn({ err: error, durable }, "consume loop ended; re-opening it until the consumer answers");
      }
      live = false;
      // Re-open until the consumer exists again or `stop()`; handlers in hand keep running meanwhile.
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
          logger.warn({ err: error, durable }, "consume loop ended; re-opening it until the consumer answers");
        }
      }
      if (stopping.signal.aborted) break;
    }
    live = false;
    while (inHand.size > 0) await new Promise<void>((resolve) => (wake = resolve));
  };

  return {
    async start() {
      await ensureDurable(config.jsm, config.stream, { durable, filterSubject: config.filterSubject, ackWaitMs: config.ackWaitMs, maxAckPending: config.maxAckPending });
      messages = await open();
      live = true;
      heartbeat = setInterval(beat, Math.max(1, config.ackWaitMs / BEATS_PER_ACK_WAIT));
      heartbeat.unref();
      done = loop();
    },
    // A loop with every slot taken pulls nothing, so its heartbeats stop too: that is no stall.
    running: () => live && !(watch?.stalled() && inHand.size < config.concurrency),
    async stop() {
      stopping.abort();
      await messages?.close();
      await done;
      clearInterval(heartbeat);
    },
  };
}
