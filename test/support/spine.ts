import type { Actor } from "../../contracts/common.js";
import type { DomainEvent } from "../../contracts/events.js";
import { createSecretBox } from "../../services/shared/secret-box.js";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createLogger } from "../../services/shared/logger.js";
import type { TestStreams } from "./nats.js";

const actor: Actor = { kind: "system", id: "test" };
export const testContext = () => ({ correlationId: `test-${Date.now()}`, causationId: null, actor, now: new Date() });
export const quietLogger = () => createLogger("silent");
export const secretBox = createSecretBox(undefined);

/** Appends events straight to the store, as a fixture (a tenant, an endpoint, a message…). */
export function seed(store: EventStore) {
  return async (tenantId: string, aggregateType: "tenant" | "endpoint" | "message" | "delivery", aggregateId: string, events: DomainEvent[]) =>
    store.append({ tenantId, aggregateType, aggregateId }, events, { expectedVersion: 0, prevHash: null, causeId: `seed-${aggregateId}`, context: testContext() });
}

/**
 * A delivery as the router schedules it: the message's `message.received` first, then the
 * `delivery.scheduled` naming it by its stream sequence (the dispatcher reads the payload there).
 */
export function seedDelivery(store: EventStore) {
  return async (
    tenantId: string,
    deliveryId: string,
    delivery: { messageId: string; endpointId: string; eventType: string; payload: Record<string, unknown>; registrySeq: number },
  ) => {
    const { messageId, endpointId, eventType, payload, registrySeq } = delivery;
    const received = await seed(store)(tenantId, "message", messageId, [{ type: "message.received", data: { eventType, payload } }]);
    const messageReceivedAt = received.envelopes[0]!.occurredAt;
    return seed(store)(tenantId, "delivery", deliveryId, [
      { type: "delivery.scheduled", data: { messageId, endpointId, eventType, messageSeq: received.lastSeq, messageReceivedAt, registrySeq } },
    ]);
  };
}

/**
 * A store whose `append` fails once, for the cause matching `pattern`, after storing its events:
 * a crash between the append and its ack.
 */
export function crashingStore(streams: TestStreams, pattern: RegExp): EventStore & { crashed: () => boolean } {
  const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
  let crashed = false;
  return {
    ...store,
    crashed: () => crashed,
    async append(ref, events, options) {
      if (crashed || !pattern.test(options.causeId)) return store.append(ref, events, options);
      crashed = true;
      await store.append(ref, events, options);
      throw new Error(`simulated crash after ${options.causeId}`);
    },
  };
}
