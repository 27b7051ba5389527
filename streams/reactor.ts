import { setTimeout as sleep } from "node:timers/promises";
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { CONSUME_PULLS, ensureDurable, settle, watchConsume, type ConsumeWatch, type Settlement } from "./consumers.js";
import type { ParkReason } from "../contracts/events.js";
import { countsTowardParking, type Parking } from "./parking.js";

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
/** Messages whose failures in a row are remembered; past this the oldest count is forgotten. */
const MAX_FAILING_MESSAGES = 10_000;
/**
 * From this delivery on, a message this process has not taken before may have been held by
 * processes that died with it: the second delivery is an ordinary takeover after one crash, the
 * third is a suspect, and its handling is marked where the next process can count it.
 */
const SUSPECT_FROM_DELIVERY = 3;
/** Messages this process took, remembered so that its own put-backs coming back are no suspects. */
const MAX_TAKEN_MESSAGES = 100_000;

/** What a handler reads of a message: a consumer's `JsMsg`, or a parked message read back from the stream. */
export interface ReactorMessage {
  seq: number;
  subject: string;
  headers?: JsMsg["headers"];
  info: Pick<JsMsg["info"], "redelivered" | "deliveryCount">;
  /** The stored body. */
  data: Uint8Array;
  json<T>(): T;
}

/** A handler that outlived the reactor's `handlerTimeoutMs`: its slot is given back, its message retried. */
export class HandlerTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the handler did not settle within ${timeoutMs} ms`);
    this.name = "HandlerTimeoutError";
  }
}

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
  /**
   * A handler still running after this long counts as failed: its message is retried (and in time
   * parked) and its slot freed, whatever it is waiting for. Unset: no deadline (the dispatcher's
   * handlers hold messages for as long as a slow endpoint's lane needs).
   */
  handlerTimeoutMs?: number;
  /** Parks a message after `maxFailures` counted failures in a row, so it stops coming back. Unset: retried forever. */
  parking?: Parking;
}

/** What a role hands the reactor: which event types it reacts to, and what it does with one. */
export interface ReactorHandler {
  /** Event types (header `Zen-Event-Type`) handled; every other message of the filter is acked unread. */
  triggers: ReadonlySet<string>;
  handle(message: ReactorMessage): Promise<Settlement>;
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
 * A suspect's turn in the quarantine ends when its handling does or after this long, when the next
 * starts beside it: a handling that waits on a slow endpoint must not hold every other suspect back.
 */
const QUARANTINE_TURN_MS = 1_000;

/** Runs handlings one at a time, except that a turn longer than `turnMs` lets the next one start. */
function createQuarantine(turnMs: number) {
  let previousTurn: Promise<void> = Promise.resolve();
  return async <T>(run: () => Promise<T>): Promise<T> => {
    let endTurn!: () => void;
    const myTurn = previousTurn;
    previousTurn = new Promise<void>((resolve) => (endTurn = resolve));
    await myTurn;
    const timer = setTimeout(endTurn, turnMs);
    try {
      return await run();
    } finally {
      clearTimeout(timer);
      endTurn();
    }
  };
}

/**
 * The one consumer skeleton every reactor (router, dispatcher, replayer) runs on: durable set-up,
 * a pull loop with at most `concurrency` messages in hand, one settlement per message by
 * {@link settle}, `working()` for messages held longer than a sixth of the ack wait (one timer for
 * all), and a loop that re-opens itself (every 2 s, doubling to 30 s) when the consumer or its
 * stream goes away — without re-creating a deleted consumer, which would deliver its filter again.
 * A message whose handler keeps failing (or outliving `handlerTimeoutMs`) is parked after
 * `parking.maxFailures` in a row, so no single message holds a slot or comes back forever.
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
  /** Counted failures in a row of each failing message, by stream sequence (oldest first). */
  const failures = new Map<number, number>();
  /** Stream sequences of the messages this process took (oldest first). */
  const taken = new Set<number>();
  /** Where suspects that a process already died holding are handled, one at a time (see `handleSuspect`). */
  const quarantine = createQuarantine(QUARANTINE_TURN_MS);
  const parkedReplays = config.parking?.replays?.((message) => handleWithin(message));

  const handleWithin = (message: ReactorMessage): Promise<Settlement> => {
    const timeoutMs = config.handlerTimeoutMs;
    if (timeoutMs === undefined) return handler.handle(message);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HandlerTimeoutError(timeoutMs)), timeoutMs);
    });
    return Promise.race([handler.handle(message), deadline]).finally(() => clearTimeout(timer));
  };

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

  /** Parks and terminates a message; false (the message left as it is) when the park could not be recorded. */
  const park = async (message: JsMsg, reason: ParkReason, failuresInARow: number, error: unknown): Promise<boolean> => {
    try {
      await config.parking!.park(message, { reason, failures: failuresInARow, error });
    } catch (parkError) {
      logger.error({ err: parkError, seq: message.seq, durable }, "could not park a failing message; it will be redelivered");
      return false;
    }
    failures.delete(message.seq);
    logger.error({ err: error, seq: message.seq, durable, failures: failuresInARow, reason }, "parked a message that kept failing; an operator can replay it");
    message.term();
    return true;
  };

  /** A failed handling: retried after the error delay, or parked once it has failed often enough. */
  const fail = async (message: JsMsg, error: unknown) => {
    const counted = countsTowardParking(error);
    const inARow = (failures.get(message.seq) ?? 0) + (counted ? 1 : 0);
    const parking = config.parking;
    if (parking && inARow >= parking.maxFailures) {
      if (await park(message, error instanceof HandlerTimeoutError ? "handler_timeout" : "handler_failed", inARow, error)) return;
    }
    if (counted) {
      failures.delete(message.seq);
      failures.set(message.seq, inARow);
      if (failures.size > MAX_FAILING_MESSAGES) failures.delete(failures.keys().next().value as number);
    }
    logger.error({ err: error, seq: message.seq, durable, failures: inARow }, config.failureMessage);
    message.nak(config.errorDelayMs ?? DEFAULT_ERROR_DELAY_MS);
  };

  /** Whether the message may have crashed the processes that took it before: see {@link SUSPECT_FROM_DELIVERY}. */
  const suspect = (message: JsMsg): boolean => {
    if (taken.has(message.seq)) return false;
    taken.add(message.seq);
    if (taken.size > MAX_TAKEN_MESSAGES) taken.delete(taken.keys().next().value as number);
    return message.info.deliveryCount >= SUSPECT_FROM_DELIVERY;
  };

  /** Handles a message and settles it: as its handler says, or as a failure. */
  const handleAndSettle = async (message: JsMsg) => {
    try {
      const settlement = await handleWithin(message);
      failures.delete(message.seq);
      settle(message, settlement);
    } catch (error) {
      await fail(message, error);
    }
  };

  /**
   * Marks a suspect's handling begun, handles it, and clears the mark; parks it instead once as many
   * processes as the bound took it and never finished it (each crashed or froze holding it). The
   * marks are best effort: a suspect that cannot be marked is handled unmarked, never failed for it.
   */
  const handleMarked = async (message: JsMsg, parking: Parking) => {
    let unfinished: number;
    try {
      unfinished = await parking.unfinished.begin(message.seq);
    } catch (error) {
      logger.warn({ err: error, seq: message.seq, durable }, "could not mark a suspect's handling; handling it unmarked");
      return handleAndSettle(message);
    }
    try {
      const error = new Error(`${unfinished} processes took this message and never finished handling it`);
      if (unfinished >= parking.maxFailures && (await park(message, "never_finished", unfinished, error))) return;
      await handleAndSettle(message);
    } finally {
      parking.unfinished
        .finish(message.seq)
        .catch((error) => logger.warn({ err: error, seq: message.seq, durable }, "could not clear a finished handling's mark; it ages out"));
    }
  };

  /**
   * A suspect that a process already died holding is handled in the quarantine, one at a time (a
   * turn lasting at most {@link QUARANTINE_TURN_MS}):
   * the messages that died beside it (in hand by chance) then finish one by one, and only the one
   * running when a process dies again is counted again, so a crash loop parks its cause alone.
   */
  const handleSuspect = async (message: JsMsg, parking: Parking) => {
    const diedHolding = await parking.unfinished.count(message.seq).catch(() => 0);
    return diedHolding > 0 ? quarantine(() => handleMarked(message, parking)) : handleMarked(message, parking);
  };

  const run = async (message: JsMsg) => {
    try {
      const parking = config.parking;
      await (parking && suspect(message) ? handleSuspect(message, parking) : handleAndSettle(message));
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
      await parkedReplays?.start();
    },
    // A loop with every slot taken pulls nothing, so its heartbeats stop too: that is no stall.
    running: () => live && !(watch?.stalled() && inHand.size < config.concurrency) && (parkedReplays?.running() ?? true),
    async stop() {
      await parkedReplays?.stop();
      stopping.abort();
      await messages?.close();
      await done;
      clearInterval(heartbeat);
    },
  };
}
