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
 * A store whose `append` fails once, for the cause matching `pattern`, either after storing only
 * the first event (`"midway"`: a crash between two events) or after storing all of them
 * (`"after"`: a crash before the ack).
 */
export function crashingStore(streams: TestStreams, pattern: RegExp, when: "midway" | "after"): EventStore & { crashed: () => boolean } {
  const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
  let crashed = false;
  return {
    ...store,
    crashed: () => crashed,
    async append(ref, events, options) {
      if (crashed || !pattern.test(options.causeId)) return store.append(ref, events, options);
      crashed = true;
      await store.append(ref, when === "midway" ? events.slice(0, 1) : events, options);
      throw new Error(`simulated crash ${when} ${options.causeId}`);
    },
  };
}
