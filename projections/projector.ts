import { setTimeout as sleep } from "node:timers/promises";
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import pRetry, { AbortError } from "p-retry";
import { CONSUME_PULLS, watchConsume, type ConsumeWatch } from "../streams/consumers.js";
import type { Topology } from "../streams/topology.js";
import { applyBatch, CheckpointRewoundError, readModelSeq, type StreamEvent } from "./checkpoint.js";
import type { Database } from "./db.js";
import { createBatcher } from "./batcher.js";
import { acquireProjectorLock, type ProjectorLock } from "./lock.js";
import { assertVersionKnown } from "../domain/upcast.js";
import { parseEnvelope } from "./read-models/shared.js";

/** The logging port (pino's Logger fits). */
export interface ProjectorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ProjectorDeps {
  db: Database;
  jsm: JetStreamManager;
  js: JetStreamClient;
  topology: Topology;
  logger: ProjectorLogger;
  /** Most events applied in one transaction (default 1000). */
  batchSize?: number;
  /** How often a standby retries the advisory lock (default 1000 ms). */
  lockPollMs?: number;
}

/**
 * Where the projector is: `projecting` while its session's consume loop iterates and its heartbeats
 * come, `standby` while it waits for the advisory lock another process holds (ready to take over),
 * `down` otherwise (not started or stopped, setting a session up, between a failed session and the
 * next, or while its heartbeats are missed: NATS restarting).
 */
export type ProjectorState = "projecting" | "standby" | "down";

export interface Projector {
  /** Starts in the background: waits for the lock (standby), then projects until `stop()`. */
  start(): Promise<void>;
  /** Stops consuming, applies what was already received, releases the lock. */
  stop(): Promise<void>;
  /** The checkpoint this process last committed (or read). */
  appliedSeq(): number;
  /** Whether it projects, stands by for the lock, or neither (see {@link ProjectorState}). */
  state(): ProjectorState;
}

/** How long to wait for more messages before applying a partial batch. */
const GATHER_MS = 5;
/** How long `stop()` lets a failing batch keep retrying before giving up on it. */
const STOP_GRACE_MS = 5_000;

export function createProjector(deps: ProjectorDeps): Projector {
  const { db, js, jsm, topology, logger } = deps;
  const batchSize = deps.batchSize ?? 1000;
  /** Aborted by `stop()`: no new session, no lock polling. */
  const stopping = new AbortController();
  /** Aborted when a stopping projector stops retrying a failing batch (after STOP_GRACE_MS). */
  const giveUp = new AbortController();
  let applied = 0;
  let messages: ConsumerMessages | null = null;
  let running: Promise<void> | null = null;
  let state: ProjectorState = "down";
  let watch: ConsumeWatch | undefined;

  const decode = (m: JsMsg): StreamEvent => {
    let raw: unknown;
    try {
      raw = m.json();
    } catch (error) {
      logger.error({ seq: m.seq, subject: m.subject, err: error }, "projector: malformed event skipped");
      return { seq: m.seq, envelope: null };
    }
    // Not malformed, only newer than this code: the batch fails and is retried until the upgrade.
    assertVersionKnown(raw);
    try {
      const envelope = parseEnvelope(raw);
      if (!envelope) logger.warn({ seq: m.seq, type: m.headers?.get("Zen-Event-Type") }, "projector: unknown event type skipped");
      return { seq: m.seq, envelope };
    } catch (error) {
      // Retrying cannot fix a malformed event: it is logged loudly and passed over.
      logger.error({ seq: m.seq, subject: m.subject, err: error }, "projector: malformed event skipped");
      return { seq: m.seq, envelope: null };
    }
  };

  const commit = async (events: StreamEvent[]) => {
    const seqs = { first: events[0]?.seq, last: events.at(-1)?.seq };
    const attempt = async () => {
      try {
        return await applyBatch(db, events, applied);
      } catch (error) {
        // A rebuild reset the checkpoint: retrying cannot help, the session restarts from it.
        throw error instanceof CheckpointRewoundError ? new AbortError(error) : error;
      }
    };
    applied = await pRetry(attempt, {
      retries: Infinity,
      minTimeout: 100,
      maxTimeout: 5_000,
      signal: giveUp.signal,
      onFailedAttempt: ({ error, attemptNumber }) => logger.error({ err: error, attempt: attemptNumber, ...seqs }, "projector: batch failed, retrying"),
    });
  };

  /** One ordered-consumer session from the checkpoint; ends on stop, lock loss or a consumer error. */
  const session = async (lock: ProjectorLock) => {
    applied = await readModelSeq(db);
    await jsm.streams.info(topology.stream); // fails (and is retried) until the stream exists
    const consumer = await js.consumers.get(topology.stream, {
      filter_subjects: topology.allEvents,
      ...(applied > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: applied + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    // Room for the batch being gathered and the next one, so a batch is waiting when a commit ends.
    const iter = await consumer.consume({ max_messages: 2 * batchSize, ...CONSUME_PULLS });
    messages = iter;
    watch = watchConsume(iter);
    lock.onLost(() => iter.stop());
    if (stopping.signal.aborted) iter.stop();
    logger.info({ fromSeq: applied + 1, stream: topology.stream }, "projector: consuming");
    state = "projecting";
    // The next batch is decoded while the previous one commits; after a failure nothing more is
    // committed in this session (the next one re-reads from the checkpoint), so no event is ever
    // applied out of order.
    const batcher = createBatcher<JsMsg, StreamEvent[]>({
      maxSize: batchSize,
      gatherMs: GATHER_MS,
      prepare: (batch) => batch.map(decode),
      commit,
      onFailure: () => iter.stop(),
    });
    let consumeError: { error: unknown } | null = null;
    try {
      for await (const m of iter) {
        watch.progressed();
        const wait = batcher.push(m, iter.getPending() === 0 && m.info.pending === 0);
        if (wait) await wait;
      }
    } catch (error) {
      consumeError = { error };
    } finally {
      messages = null;
      state = "down";
    }
    // What was received is committed before the session ends, so no commit outlives it.
    await batcher.drain();
    if (consumeError) throw consumeError.error;
  };

  const run = async () => {
    while (!stopping.signal.aborted) {
      state = "standby";
      const lock = await acquireProjectorLock(db, { pollMs: deps.lockPollMs ?? 1000, signal: stopping.signal, logger }).finally(() => (state = "down"));
      if (!lock) return;
      try {
        while (!stopping.signal.aborted && !lock.lost()) {
          try {
            await session(lock);
          } catch (error) {
            if (stopping.signal.aborted) break;
            if (error instanceof CheckpointRewoundError) {
              logger.info({ checkpoint: error.checkpoint }, "projector: read models rebuilt, replaying");
              continue;
            }
            logger.error({ err: error }, "projector: session failed, restarting from the checkpoint");
            await sleep(1_000, undefined, { signal: stopping.signal }).catch(() => undefined);
          }
        }
      } finally {
        await lock.release();
      }
    }
  };

  return {
    async start() {
      if (running) return;
      running = run().catch((error: unknown) => logger.error({ err: error }, "projector: stopped by an error"));
    },
    async stop() {
      stopping.abort(new Error("projector stopping"));
      messages?.stop();
      const grace = setTimeout(() => giveUp.abort(new Error("projector stopped")), STOP_GRACE_MS);
      await running;
      clearTimeout(grace);
      running = null;
    },
    appliedSeq: () => applied,
    state: () => (state === "projecting" && watch?.stalled() ? "down" : state),
  };
}
