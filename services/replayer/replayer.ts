import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import pLimit from "p-limit";
import { prefixedId, type Actor } from "../../contracts/common.js";
import { deliveryDecider, wasReplayedBy } from "../../domain/delivery/delivery.js";
import { DomainError } from "../../domain/errors.js";
import { replayDecider, tallyReplay } from "../../domain/replay/replay.js";
import { ack, toStoredEvent, type Settlement } from "../../streams/consumers.js";
import { createReactor, TAKEOVER_AFTER_MS, type ReactorMessage } from "../../streams/reactor.js";
import type { Parking } from "../../streams/parking.js";
import type { AggregateRef, CommandContext, EventStore, StoredEvent } from "../../streams/event-store.js";
import type { Topology } from "../../streams/topology.js";
import { traceFields, type Logger } from "../shared/logger.js";

const SYSTEM: Actor = { kind: "system", id: "replayer" };
/** A request that keeps failing is given up (`replay.failed`) on this delivery of its event. */
/** Tries of a replay request before it is recorded as failed. */
export const REPLAYER_TRIES = 8;
const DeliveryId = prefixedId("delivery");

export interface ReplayerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: EventStore;
  topology: Topology;
  logger: Logger;
  /** Replay requests handled at once. */
  concurrency?: number;
  /** Deliveries of one request scheduled again at once. */
  deliveriesAtOnce?: number;
  /**
   * Parks a replay request whose failure could not even be recorded; give it more failures than
   * {@link REPLAYER_TRIES}, so a request that fails records `replay.failed` first.
   */
  parking?: Parking;
}

/** A short, secret-free description of why a replay could not finish. */
const describe = (error: unknown): string => {
  const e = error as { name?: string; message?: string };
  return `${e.name ?? "Error"}: ${(e.message ?? String(error)).split("\n")[0]}`.slice(0, 200);
};

/**
 * The replayer: a reactor on replay requests (`<prefix>.evt.*.dlv.replay.*`). Each
 * `replay.requested` names dead deliveries of its tenant; every one still dead is scheduled again
 * with `delivery.replayed` (a new attempt series, which the dispatcher then attempts), every other
 * one is skipped, and `replay.completed` records the tally. Every append is idempotent (causes
 * derived from the replay and the delivery; a delivery remembers the replays that revived it), so
 * a redelivered request schedules nothing twice and completes with the same tally.
 */
export function createReplayer({ js, jsm, store, topology, logger, concurrency = 4, deliveriesAtOnce = 32, parking }: ReplayerDeps) {
  const durable = topology.consumerName("replayer");

  /** Schedules one delivery again; true when it now carries this replay (false: skipped). */
  async function replayOne(tenantId: string, deliveryId: string, replayId: string, context: CommandContext): Promise<boolean> {
    // Ids come from requests; one that is not a delivery id cannot name a delivery subject.
    if (!DeliveryId.safeParse(deliveryId).success) return false;
    const ref: AggregateRef = { tenantId, aggregateType: "delivery", aggregateId: deliveryId };
    try {
      const { state } = await store.handle(ref, deliveryDecider, { type: "ReplayDelivery", replayId }, { causeId: `${deliveryId}:replay:${replayId}`, context });
      return wasReplayedBy(state, replayId);
    } catch (error) {
      // Absent in this tenant (another tenant's id lands on an empty subject) or not dead: skipped.
      if (error instanceof DomainError) return false;
      throw error;
    }
  }

  async function replayAll(ref: AggregateRef, deliveryIds: readonly string[], context: CommandContext) {
    const limit = pLimit(deliveriesAtOnce);
    const unique = [...new Set(deliveryIds)];
    const results = await Promise.allSettled(unique.map((id) => limit(() => replayOne(ref.tenantId, id, ref.aggregateId, context))));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) throw failure.reason;
    const replayed = new Set(unique.filter((_, i) => (results[i] as PromiseFulfilledResult<boolean>).value));
    return tallyReplay(unique, (id) => replayed.has(id));
  }

  async function replay(stored: StoredEvent, tries: number, redelivered: boolean): Promise<Settlement> {
    const { envelope } = stored;
    const ref: AggregateRef = { tenantId: envelope.tenantId, aggregateType: "replay", aggregateId: envelope.aggregateId };
    const loaded = await store.load(ref, replayDecider, { knownLast: stored, knownLastIsLatest: !redelivered });
    // Completed or failed by an earlier delivery of this event: nothing left to do.
    if (loaded.state.status !== "requested") return ack;
    const context: CommandContext = { correlationId: envelope.correlationId, causationId: envelope.id, actor: SYSTEM, now: new Date() };
    const log = { tenantId: ref.tenantId, replayId: ref.aggregateId, correlationId: envelope.correlationId, ...traceFields(stored) };
    try {
      const tally = await replayAll(ref, loaded.state.deliveryIds, context);
      await store.handle(ref, replayDecider, { type: "CompleteReplay", ...tally }, { causeId: `${ref.aggregateId}:completed`, context });
      logger.info({ ...log, replayed: tally.replayed.length, skipped: tally.skipped }, "replay completed");
      return ack;
    } catch (error) {
      if (tries < REPLAYER_TRIES) throw error;
      const reason = `could not schedule every delivery after ${tries} tries: ${describe(error)}`;
      await store.handle(ref, replayDecider, { type: "FailReplay", reason }, { causeId: `${ref.aggregateId}:failed`, context });
      logger.error({ ...log, err: error }, "replay failed");
      return ack;
    }
  }

  async function handle(message: ReactorMessage): Promise<Settlement> {
    return replay(toStoredEvent(message), message.info.deliveryCount, message.info.redelivered);
  }

  // The filter also brings the replay's own later events (completed, failed): acked unread.
  const filterSubject = topology.aggregateSubject("*", "replay", "*");
  return createReactor(
    {
      js,
      jsm,
      stream: topology.stream,
      durable,
      filterSubject,
      ackWaitMs: TAKEOVER_AFTER_MS,
      maxAckPending: 1_000,
      concurrency,
      errorDelayMs: 2_000,
      logger,
      failureMessage: "replay failed for now; the request will be redelivered",
      parking,
    },
    { triggers: new Set(["replay.requested"]), handle },
  );
}

export type Replayer = ReturnType<typeof createReplayer>;
