import { ID_PREFIX } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { describeMatch } from "../endpoint/patterns.js";

/** An endpoint as the router's registry view holds it (one tenant's, as of the message's sequence). */
export interface RoutableEndpoint {
  endpointId: string;
  status: "active" | "disabled" | "deleted";
  eventTypes: string[];
}

/** What the fanout strategy needs to route one message. */
export interface FanoutInput {
  messageId: string;
  eventType: string;
  registrySeq: number;
  endpoints: readonly RoutableEndpoint[];
}

type Candidate = EventData<"routing.decided">["candidates"][number];

const stripPrefix = (id: string, prefix: string): string => (id.startsWith(prefix) ? id.slice(prefix.length) : id);

/**
 * The delivery id of a message to an endpoint: `dlv_<message id without msg_>_<endpoint id without ep_>`.
 * Deterministic, so a redelivered routing decision schedules the same delivery, never a second one.
 */
export const deliveryIdFor = (messageId: string, endpointId: string): string =>
  `${ID_PREFIX.delivery}${stripPrefix(messageId, ID_PREFIX.message)}_${stripPrefix(endpointId, ID_PREFIX.endpoint)}`;

/** The endpoint a delivery id names (the inverse of {@link deliveryIdFor}; ids hold no `_` of their own). */
export const endpointIdOf = (deliveryId: string): string => `${ID_PREFIX.endpoint}${deliveryId.slice(deliveryId.lastIndexOf("_") + 1)}`;

const byEndpointId = (a: { endpointId: string }, b: { endpointId: string }) => (a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0);

const candidateFor = (endpoint: RoutableEndpoint, eventType: string): Candidate =>
  endpoint.status === "active"
    ? { endpointId: endpoint.endpointId, ...describeMatch(endpoint.eventTypes, eventType) }
    : { endpointId: endpoint.endpointId, matched: false, reason: endpoint.status };

/**
 * Fanout: every active endpoint with a matching pattern is a target. Deleted endpoints are left out
 * altogether; disabled ones are listed as candidates so the decision shows why they got nothing.
 * Candidates and targets are sorted by endpoint id, so the decision does not depend on input order.
 */
export const decideFanout = (input: FanoutInput): EventData<"routing.decided"> => {
  const candidates = input.endpoints
    .filter((endpoint) => endpoint.status !== "deleted")
    .map((endpoint) => candidateFor(endpoint, input.eventType))
    .sort(byEndpointId);
  const targets = candidates.filter((candidate) => candidate.matched).map(({ endpointId }) => ({ endpointId, deliveryId: deliveryIdFor(input.messageId, endpointId) }));
  return { eventType: input.eventType, strategy: "fanout", registrySeq: input.registrySeq, candidates, targets };
};
