import { ID_PREFIX } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { describeMatch } from "../endpoint/patterns.js";
import { boundCandidates, sortCandidates, type Candidate } from "./candidate-set.js";

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

const stripPrefix = (id: string, prefix: string): string => (id.startsWith(prefix) ? id.slice(prefix.length) : id);

/**
 * The delivery id of a message to an endpoint: `dlv_<message id without msg_>_<endpoint id without ep_>`.
 * Deterministic, so a redelivered routing decision schedules the same delivery, never a second one.
 */
export const deliveryIdFor = (messageId: string, endpointId: string): string =>
  `${ID_PREFIX.delivery}${stripPrefix(messageId, ID_PREFIX.message)}_${stripPrefix(endpointId, ID_PREFIX.endpoint)}`;

/** The endpoint a delivery id names (the inverse of {@link deliveryIdFor}; ids hold no `_` of their own). */
export const endpointIdOf = (deliveryId: string): string => `${ID_PREFIX.endpoint}${deliveryId.slice(deliveryId.lastIndexOf("_") + 1)}`;

const candidateFor = (endpoint: RoutableEndpoint, eventType: string): Candidate =>
  endpoint.status === "active"
    ? { endpointId: endpoint.endpointId, ...describeMatch(endpoint.eventTypes, eventType) }
    : { endpointId: endpoint.endpointId, matched: false, reason: endpoint.status };

/**
 * Fanout: every active endpoint with a matching pattern is a target. Deleted endpoints are left out
 * altogether; disabled ones are candidates so the decision shows why they got nothing. Candidates
 * and targets are sorted by endpoint id, so the decision does not depend on input order. Every
 * target is listed, but only the first candidates with a digest of them all (`boundCandidates`),
 * so the event grows with the targets alone, not with every endpoint the tenant has.
 */
export const decideFanout = (input: FanoutInput): EventData<"routing.decided"> => {
  const all = sortCandidates(input.endpoints.filter((endpoint) => endpoint.status !== "deleted").map((endpoint) => candidateFor(endpoint, input.eventType)));
  const targets = all.filter((candidate) => candidate.matched).map(({ endpointId }) => ({ endpointId, deliveryId: deliveryIdFor(input.messageId, endpointId) }));
  return { eventType: input.eventType, strategy: "fanout", registrySeq: input.registrySeq, ...boundCandidates(all), targets };
};
