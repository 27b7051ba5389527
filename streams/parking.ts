import { ClosedConnectionError, ConnectionError, DrainingConnectionError, NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import type { ParkReason } from "../contracts/events.js";
import { redact } from "../domain/redaction/redact.js";
import { parkedDecider, parkedIdFor, type ParkedCommand } from "../domain/parked/parked.js";
import { ack, type Settlement } from "./consumers.js";
import type { CommandContext, EventStore } from "./event-store.js";
import { createReactor, TAKEOVER_AFTER_MS, type Reactor, type ReactorLogger, type ReactorMessage } from "./reactor.js";
import type { Topology } from "./topology.js";
import { createUnfinishedHandlings, type UnfinishedHandlings } from "./unfinished-handlings.js";

const MAX_ERROR_CHARS = 1_000;

/** What a reactor needs to park a message it cannot handle, and to handle it again on request. */
export interface Parking {
  /** Counted failures in a row (see {@link countsTowardParking}), or processes that never finished it, after which a message is parked. */
  maxFailures: number;
  /** Marks of the handlings processes began and never finished: the count that survives a crash loop. */
  unfinished: UnfinishedHandlings;

  /** Records the message as parked; throws when that could not be recorded (the message is then kept). */
  park(message: ReactorMessage, failure: { reason: ParkReason; failures: number; error: unknown }): Promise<void>;
  /** A reactor that handles this role's parked messages again when the operator asks, with `handle`. */
  replays?(handle: (message: ReactorMessage) => Promise<Settlement>): Reactor;
}

export interface ParkingDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: EventStore;
  topology: Topology;
  /** The role whose reactor parks: `router`, `dispatcher`, `replayer`. */
  role: string;
  /** Counted failures in a row before a message is parked (`ZEN_PARK_AFTER_FAILURES`). */
  maxFailures: number;
  logger: ReactorLogger;
  /** Called once per message parked (the metric). */
  onParked?: (reason: ParkReason) => void;
}

const NATS_UNAVAILABLE = [ConnectionError, ClosedConnectionError, DrainingConnectionError, TimeoutError, NoRespondersError, RequestError];

/**
 * Whether a handler's failure says something about the message: NATS being away or slow (a
 * restart, a cluster without a stream leader) does not, and must never park a healthy message.
 */
export function countsTowardParking(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 3; cause = cause.cause, depth++) {
    if (NATS_UNAVAILABLE.some((kind) => cause instanceof kind)) return false;
    if (cause instanceof JetStreamApiError && cause.status === 503) return false;
  }
  return true;
}

const describeError = (error: unknown): string => redact(error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, MAX_ERROR_CHARS);

/** `<prefix>.evt.<tenantId>.…`: every event subject names its tenant. */
const tenantOfSubject = (subject: string): string => subject.split(".")[2] ?? "unknown";

/**
 * Parking for one role: a parked message becomes a `parked.added` event on its tenant's `ops`
 * branch (`pkd_<role>-<seq>`), and a second durable (`<ROLE>_PARKED`) on the parked events hands
 * this role's `parked.replay_requested` back to the role's own handler: the message is read from
 * the stream by its sequence and handled as a redelivery, then `parked.replayed` (or
 * `parked.replay_failed`, leaving it parked) is recorded.
 */
export function createParking({ js, jsm, store, topology, role, maxFailures, logger, onParked }: ParkingDeps): Parking {
  const actor = { kind: "system" as const, id: role };
  const idPrefix = parkedIdFor(role, 0).slice(0, -1);

  const decide = (tenantId: string, parkedId: string, command: ParkedCommand, causeId: string, correlationId: string) => {
    const context: CommandContext = { correlationId, causationId: null, actor, now: new Date() };
    return store.handle({ tenantId, aggregateType: "parked", aggregateId: parkedId }, parkedDecider, command, { causeId, context });
  };

  async function replay(message: ReactorMessage, handle: (message: ReactorMessage) => Promise<Settlement>): Promise<Settlement> {
    const parkedId = message.headers?.get(EVENT_HEADERS.aggregateId) ?? "";
    if (!parkedId.startsWith(idPrefix)) return ack;
    const tenantId = tenantOfSubject(message.subject);
    const { state } = await store.load({ tenantId, aggregateType: "parked", aggregateId: parkedId }, parkedDecider, { fresh: true });
    if (state.status !== "replaying") return ack;
    const attempt = `${parkedId}:${message.seq}`;
    const finish = (command: ParkedCommand) => decide(tenantId, parkedId, command, `${attempt}:${command.type}`, attempt).then(() => ack);
    const original = await jsm.direct.getMessage(topology.stream, { seq: state.parked.streamSeq });
    if (!original) return finish({ type: "FailReplay", error: "the message is no longer in the stream (past its retention)" });
    const again: ReactorMessage = {
      seq: original.seq,
      subject: original.subject,
      headers: original.header,
      info: { redelivered: true, deliveryCount: state.parked.failures + 1 },
      data: original.data,
      json: <T>() => original.json<T>(),
    };
    let settlement: Settlement;
    try {
      settlement = await handle(again);
    } catch (error) {
      logger.warn({ err: error, parkedId }, "a parked message failed again on replay; it stays parked");
      return finish({ type: "FailReplay", error: describeError(error) });
    }
    // Not yet (a retry not due, a registry view behind): this replay request comes back then.
    if (settlement.kind === "nak") return settlement;
    return finish({ type: "CompleteReplay" });
  }

  return {
    maxFailures,
    unfinished: createUnfinishedHandlings(js, topology, role),
    async park(message, { reason, failures, error }) {
      const tenantId = tenantOfSubject(message.subject);
      const parkedId = parkedIdFor(role, message.seq);
      const eventType = message.headers?.get(EVENT_HEADERS.type) || undefined;
      const correlationId = message.headers?.get(EVENT_HEADERS.correlation) || parkedId;
      const command: ParkedCommand = {
        type: "Park",
        reactor: role,
        streamSeq: message.seq,
        subject: message.subject,
        ...(eventType && { eventType }),
        reason,
        failures,
        error: describeError(error),
      };
      const { envelopes } = await decide(tenantId, parkedId, command, `${parkedId}:parked`, correlationId);
      if (envelopes.length > 0) onParked?.(reason);
    },
    replays: (handle) =>
      createReactor(
        {
          // A replay that keeps failing, or kills the processes running it, fails the replay
          // (the message stays parked) instead of coming back for ever.
          parking: {
            maxFailures,
            unfinished: createUnfinishedHandlings(js, topology, `${role}-replays`),
            async park(request, { error }) {
              const parkedId = request.headers?.get(EVENT_HEADERS.aggregateId) ?? "";
              const attempt = `${parkedId}:${request.seq}`;
              await decide(tenantOfSubject(request.subject), parkedId, { type: "FailReplay", error: describeError(error) }, `${attempt}:FailReplay`, attempt);
            },
          },
          js,
          jsm,
          stream: topology.stream,
          durable: `${topology.consumerName(role)}_PARKED`,
          filterSubject: topology.parkedEvents,
          ackWaitMs: TAKEOVER_AFTER_MS,
          maxAckPending: 1_000,
          concurrency: 8,
          logger,
          failureMessage: "a parked message's replay could not run; it will be retried",
        },
        { triggers: new Set(["parked.replay_requested"]), handle: (message) => replay(message, handle) },
      ),
  };
}
