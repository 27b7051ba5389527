import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MAX_LISTED_CANDIDATES } from "../../contracts/events.js";
import { boundCandidates, candidateSetDigest, type Candidate } from "./candidate-set.js";

const candidates: Candidate[] = Array.from({ length: 12 }, (_, i) => ({
  endpointId: `ep_${String(i).padStart(2, "0")}`,
  matched: i % 3 !== 0,
  reason: i % 3 !== 0 ? 'pattern "order.*" matches' : i % 2 === 0 ? "disabled" : 'no pattern matches "order.paid"',
}));

describe("the candidate set digest", () => {
  it("is what an auditor derives: sha256 of the JSON array of [endpointId, matched, reason], sorted by endpoint id", () => {
    const canonical = `[${candidates.map((c) => `["${c.endpointId}",${c.matched},${JSON.stringify(c.reason)}]`).join(",")}]`;
    expect(candidateSetDigest(candidates)).toBe(`sha256:${createHash("sha256").update(canonical).digest("hex")}`);
    expect(candidateSetDigest([])).toBe(`sha256:${createHash("sha256").update("[]").digest("hex")}`);
  });

  it("does not depend on the order the candidates come in", () => {
    const digest = candidateSetDigest(candidates);
    expect(candidateSetDigest([...candidates].reverse())).toBe(digest);
    expect(candidateSetDigest([...candidates.slice(5), ...candidates.slice(0, 5)])).toBe(digest);
  });

  it("changes when any candidate's reason or match changes, or one is left out", () => {
    const digest = candidateSetDigest(candidates);
    const changed = (i: number, change: Partial<Candidate>) => candidates.map((c, j) => (j === i ? { ...c, ...change } : c));
    const digests = new Set([digest]);
    for (const [i, c] of candidates.entries()) {
      digests.add(candidateSetDigest(changed(i, { matched: !c.matched })));
      digests.add(candidateSetDigest(changed(i, { reason: `${c.reason} ` })));
      digests.add(candidateSetDigest(candidates.filter((_, j) => j !== i)));
    }
    expect(digests.size).toBe(1 + 3 * candidates.length);
  });
});

describe("bounding the candidates", () => {
  it("lists the first candidates by endpoint id and describes the whole set", () => {
    const many = Array.from({ length: MAX_LISTED_CANDIDATES + 50 }, (_, i) => ({ endpointId: `ep_${String(i).padStart(3, "0")}`, matched: i % 2 === 0, reason: "r" }));
    const bounded = boundCandidates([...many].reverse());
    expect(bounded.candidates).toEqual(many.slice(0, MAX_LISTED_CANDIDATES));
    expect(bounded.candidateSet).toEqual({ count: many.length, matched: 75, digest: candidateSetDigest(many) });
  });

  it("lists a set of at most the bound whole", () => {
    expect(boundCandidates(candidates)).toEqual({ candidates, candidateSet: { count: 12, matched: 8, digest: candidateSetDigest(candidates) } });
  });
});
