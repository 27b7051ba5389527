import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Actor } from "../../contracts/common.js";
import { EVENT_HEADERS } from "../../contracts/envelope.js";
import type { EventData } from "../../contracts/events.js";
import { deliveryDecider } from "../../domain/delivery/delivery.js";
import { messageDecider } from "../../domain/message/message.js";
import { ack, retryLater, toStoredEvent, type Settlement } from "../../streams/consumers.js";
import { createReactor, TAKEOVER_AFTER_MS, type ReactorMessage } from "../../streams/reactor.js";
import type { Parking } from "../../streams/parking.js";
import { ConcurrencyError, type CommandContext, type EventStore, type StoredEvent } from "../../streams/event-store.js";
import type { MessagePayloads } from "../../streams/message-payloads.js";
import type { RegistryView } from "../../streams/registry-view.js";
import type { Topology } from "../../streams/topology.js";
import { traceFields, type Logger } from "../shared/logger.js";
import { NOOP_TRACING, withSpan, type Tracing } from "../shared/tracing.js";

const SYSTEM: Actor = { kind: "system", id: "router" };
/** How long a message waits for the registry view to reach its sequence before it is retried. */
const VIEW_WAIT_MS = 10_000;
/** How often endpoint versions older than every unrouted message are forgotten. */
const PRUNE_EVERY_MS = 30_000;
/**
 * A routing that has not settled by then counts as failed (and in time parked): well past its own
 * waits (the view, 10 s; an unanswered append's re-sends, 10 s) and a fan-out to 2,000 endpoints.
 */
const ROUTING_DEADLINE_MS = 60_000;

export interface RouterDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: EventStore;
  view: RegistryView;
  topology: Topology;
  logger: Logger;
  concurrency?: number;
  /** A span per routed message, continuing the message's trace (off by default). */
  tracing?: Tracing;
  /** Parks a message whose routing keeps failing, so it cannot hold the router's slots (unset: retried forever). */
  parking?: Parking;
  /** Where each routed message's payload is remembered for the deliveries that name it (a dispatcher in the same process reads it there). */
  payloads?: Pick<MessagePayloads, "remember">;
}

/**
 * The router: a reactor on message events. Each `message.received` at stream sequence M is routed
 * against the registry as of M (the view's history), recorded as `routing.decided` on the message,
 * then one `delivery.scheduled` per target, naming the message's event rather than copying its payload. Every append is idempotent (deterministic ids and
 * optimistic concurrency), so a redelivered message schedules nothing twice.
 */
export function createRouter({ js, jsm, store, view, topology, logger, concurrency = 512, tracing = NOOP_TRACING, parking, payloads }: RouterDeps) {
  const durable = topology.consumerName("router");
  let pruning: NodeJS.Timeout | undefined;

  /** Every message below the consumer's ack floor is routed: older registry versions can go. */
  async function pruneView(): Promise<void> {
    const info = await jsm.consumers.info(topology.stream, durable);
    view.forgetBefore(info.ack_floor.stream_seq + 1);
  }

  async function route(stored: StoredEvent, eventBytes: number, redelivered: boolean, traceparent?: string): Promise<Settlement> {
    const { envelope, seq } = stored;
    if (!(await view.waitFor(seq, VIEW_WAIT_MS))) return retryLater(1_000);
    const context: CommandContext = { correlationId: envelope.correlationId, causationId: envelope.id, actor: SYSTEM, now: new Date() };
    // The routing decision and the deliveries it schedules carry the routing span's trace context.
    if (traceparent) context.traceparent = traceparent;
    const endpoints = view.endpointsAsOf(envelope.tenantId, seq).map(({ endpointId, state }) => ({
      endpointId,
      status: state.status,
      eventTypes: state.eventTypes,
    }));
    const { state } = await store.handle(
      { tenantId: envelope.tenantId, aggregateType: "message", aggregateId: envelope.aggregateId },
      messageDecider,
      { type: "DecideRouting", messageId: envelope.aggregateId, registrySeq: seq, endpoints },
      { causeId: `${envelope.aggregateId}:routing`, context, knownLast: stored, knownLastIsLatest: !redelivered },
    );
    if (state.status !== "routed") throw new Error(`message ${envelope.aggregateId} is ${state.status} after routing`);
    if (state.routing.targets.length > 0)
      payloads?.remember({ tenantId: envelope.tenantId, messageId: envelope.aggregateId, messageSeq: seq }, state.payload, eventBytes);
    await Promise.all(state.routing.targets.map((target) => schedule(stored, state.routing, target, context)));
    // One line per routing decision at the default level: the step between the api's and the dispatcher's.
    logger.info(
      {
        tenantId: envelope.tenantId,
        messageId: envelope.aggregateId,
        targets: state.routing.targets.length,
        correlationId: envelope.correlationId,
        ...traceFields(context),
      },
      "routed",
    );
    return ack;
  }

  async function schedule(stored: StoredEvent, routing: EventData<"routing.decided">, target: { endpointId: string; deliveryId: string }, context: CommandContext) {
    const { envelope } = stored;
    const events = deliveryDecider.decide(
      {
        type: "ScheduleDelivery",
        messageId: envelope.aggregateId,
        endpointId: target.endpointId,
        eventType: routing.eventType,
        messageSeq: stored.seq,
        messageReceivedAt: envelope.occurredAt,
        registrySeq: routing.registrySeq,
      },
      deliveryDecider.initialState(),
    );
    const ref = { tenantId: envelope.tenantId, aggregateType: "delivery" as const, aggregateId: target.deliveryId };
    // A delivery id is derived from (message, endpoint): if its subject is not empty, it is scheduled.
    await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: `${target.deliveryId}:scheduled`, context }).catch((error: unknown) => {
      if (!(error instanceof ConcurrencyError)) throw error;
    });
  }

  async function handle(message: ReactorMessage): Promise<Settlement> {
    const eventBytes = message.data.length;
    if (!tracing.enabled) return route(toStoredEvent(message), eventBytes, message.info.redelivered);
    const stored = toStoredEvent(message);
    const attributes = {
      "zen.tenant_id": stored.envelope.tenantId,
      "zen.message_id": stored.envelope.aggregateId,
      "messaging.system": "nats",
      "zen.stream_seq": stored.seq,
    };
    const parent = message.headers?.get(EVENT_HEADERS.traceparent);
    return withSpan(tracing, "webhook.route", { kind: "consumer", parent, attributes }, async (span) => {
      const settlement = await route(stored, eventBytes, message.info.redelivered, span.traceparent);
      span.setAttributes({ "zen.settlement": settlement.kind });
      return settlement;
    });
  }

  // The filter also brings the message's own later events (routing.decided): acked unread.
  const reactor = createReactor(
    {
      js,
      jsm,
      stream: topology.stream,
      durable,
      filterSubject: topology.messageEvents,
      ackWaitMs: TAKEOVER_AFTER_MS,
      maxAckPending: 10_000,
      concurrency,
      logger,
      failureMessage: "routing failed; the message will be redelivered",
      handlerTimeoutMs: ROUTING_DEADLINE_MS,
      parking,
    },
    { triggers: new Set(["message.received"]), handle },
  );

  return {
    async start(): Promise<void> {
      await reactor.start();
      pruning = setInterval(() => pruneView().catch((error: unknown) => logger.warn({ err: error }, "could not prune registry history")), PRUNE_EVERY_MS);
      pruning.unref();
    },
    /** True while the durable consumer's loop runs (see `Reactor.running`). */
    running: reactor.running,
    async stop(): Promise<void> {
      clearInterval(pruning);
      await reactor.stop();
    },
  };
}
