import { createHash } from "node:crypto";
import { MAX_LISTED_CANDIDATES, type EventData } from "../../contracts/events.js";

export type Candidate = EventData<"routing.decided">["candidates"][number];
export type CandidateSet = EventData<"routing.decided">["candidateSet"];

const byEndpointId = (a: { endpointId: string }, b: { endpointId: string }) => (a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0);

/** The candidates sorted by endpoint id (UTF-16 code units, as JavaScript's `<`), the input left as it is. */
export const sortCandidates = (candidates: readonly Candidate[]): Candidate[] => [...candidates].sort(byEndpointId);

/**
 * The digest of a whole candidate set: `sha256:` and the lower-case hex sha256 of the UTF-8 bytes of
 * `JSON.stringify(sorted.map((c) => [c.endpointId, c.matched, c.reason]))`, where `sorted` is every
 * candidate sorted by endpoint id (ids are unique within a registry). The canonical form is a plain
 * JSON array without whitespace, so an auditor can re-derive it in any language: decide the fanout
 * against the registry as of `registrySeq` and compare. Input order does not matter.
 */
export const candidateSetDigest = (candidates: readonly Candidate[]): string => {
  const canonical = JSON.stringify(sortCandidates(candidates).map((c) => [c.endpointId, c.matched, c.reason]));
  return `sha256:${createHash("sha256").update(canonical, "utf8").digest("hex")}`;
};

/**
 * What a decision records of its candidates: the first {@link MAX_LISTED_CANDIDATES} by endpoint id,
 * and the count, matched count and digest of them all, so its size does not grow with the registry.
 */
export const boundCandidates = (candidates: readonly Candidate[]): { candidates: Candidate[]; candidateSet: CandidateSet } => {
  const sorted = sortCandidates(candidates);
  return {
    candidates: sorted.slice(0, MAX_LISTED_CANDIDATES),
    candidateSet: {
      count: sorted.length,
      matched: sorted.filter((candidate) => candidate.matched).length,
      digest: candidateSetDigest(sorted),
    },
  };
};
