import { DeliveryScheduledV1, EventSchemas, RoutingDecidedV1, schemaVersionOf, type EventData, type EventType } from "../contracts/events.js";
import { boundCandidates } from "./routing/candidate-set.js";

/** What upcasting reads of an envelope; every other field is kept as it is. */
interface Versioned {
  type: string;
  schemaVersion: number;
  data?: unknown;
}

/** Version 1 listed every candidate: keep the first ones and describe the whole set, as version 2 does. */
const routingDecidedV1ToV2 = (data: unknown): EventData<"routing.decided"> => {
  const { eventType, strategy, registrySeq, candidates, targets } = RoutingDecidedV1.parse(data);
  return { eventType, strategy, registrySeq, ...boundCandidates(candidates), targets };
};

/** Version 1 copied the payload (what the dispatcher sends); the router recorded the message's own sequence as its `registrySeq`. */
const deliveryScheduledV1ToV2 = (data: unknown): EventData<"delivery.scheduled"> => {
  const v1 = DeliveryScheduledV1.parse(data);
  return { ...v1, messageSeq: v1.registrySeq };
};

/**
 * Outcome types whose version 2 only added the optional `attempted` (the attempt it settles): a
 * version-1 outcome is a valid version 2 without it, its attempt being the event before it.
 */
const OUTCOMES_WITH_ATTEMPT = new Set(["delivery.succeeded", "delivery.retry_scheduled", "delivery.dead_lettered"]);

/**
 * An event written by a newer version of the platform than this process (its type's schema version
 * is past the one this code knows): not malformed, only not readable yet. A reader waits for its
 * upgrade instead of skipping it, so a rolling upgrade neither loses an event nor acts on a shape it does not know.
 */
export class NewerEventVersionError extends Error {
  constructor(type: string, version: number) {
    super(`event ${type} of schema version ${version} is newer than this process reads (${schemaVersionOf(type as EventType)}): upgrade it`);
    this.name = "NewerEventVersionError";
  }
}

/** Throws {@link NewerEventVersionError} for a known event type stored at a version newer than this code's. */
export function assertVersionKnown(raw: unknown): void {
  if (typeof raw !== "object" || raw === null) return;
  const { type, schemaVersion } = raw as { type?: unknown; schemaVersion?: unknown };
  if (typeof type === "string" && Object.hasOwn(EventSchemas, type) && typeof schemaVersion === "number" && schemaVersion > schemaVersionOf(type as EventType)) {
    throw new NewerEventVersionError(type, schemaVersion);
  }
}

/**
 * An envelope as the current schema version of its type has it, for whatever folds or projects it:
 * a version-1 `routing.decided` becomes version 2 (a malformed one throws), a version-1 delivery
 * outcome version 2 without its attempt, a version-1 `delivery.scheduled` version 2 naming its
 * message (and keeping its payload's copy); any other envelope is returned as it is. Stored events are never rewritten, and `hash`/`prevHash` stay those of the
 * stored form: verify a hash chain on the envelopes as stored, never on upcast ones.
 */
export function upcastEnvelope<E extends Versioned>(envelope: E): E {
  if (envelope.type === "routing.decided" && envelope.schemaVersion === 1) {
    return { ...envelope, schemaVersion: schemaVersionOf("routing.decided"), data: routingDecidedV1ToV2(envelope.data) };
  }
  if (envelope.schemaVersion === 1 && OUTCOMES_WITH_ATTEMPT.has(envelope.type)) return { ...envelope, schemaVersion: schemaVersionOf(envelope.type as EventType) };
  if (envelope.type === "delivery.scheduled" && envelope.schemaVersion === 1) {
    return { ...envelope, schemaVersion: schemaVersionOf("delivery.scheduled"), data: deliveryScheduledV1ToV2(envelope.data) };
  }
  return envelope;
}
