/** Further off than this, a delivery comes back at a random time up to it instead of in a queue. */
const MAX_DEFER_MS = 300_000;
/** Entries kept before those already in the past are dropped. */
const PRUNE_AT = 10_000;

export interface ComebackOptions {
  maxDeferMs?: number;
  random?: () => number;
}

/**
 * When the deliveries that an endpoint cannot take now come back to this dispatcher. A dead
 * endpoint may hold a backlog of thousands; sent back for the same moment (its circuit's half-open
 * time, or one attempt's latency away) they return in bursts that every other endpoint's deliveries
 * queue behind. So each endpoint's comebacks are spaced like a queue: each at least `spacingMs`
 * after the one before, never sooner than asked, and never further off than `maxDeferMs` — past
 * that, spread at random up to it, which bounds both the wait and the churn of a long backlog.
 */
export function createComebacks({ maxDeferMs = MAX_DEFER_MS, random = Math.random }: ComebackOptions = {}) {
  const lastDue = new Map<string, number>();

  const prune = (now: number) => {
    if (lastDue.size < PRUNE_AT) return;
    for (const [endpointId, due] of lastDue) if (due < now) lastDue.delete(endpointId);
  };

  return {
    /** Milliseconds from `now` until this delivery for `endpointId` should come back. */
    delayFor(endpointId: string, earliestMs: number, spacingMs: number, now: number): number {
      const due = Math.max(now + earliestMs, (lastDue.get(endpointId) ?? 0) + spacingMs);
      if (due - now > maxDeferMs) return earliestMs + random() * Math.max(0, maxDeferMs - earliestMs);
      prune(now);
      lastDue.set(endpointId, due);
      return Math.min(maxDeferMs, due - now + random() * spacingMs);
    },
  };
}

export type Comebacks = ReturnType<typeof createComebacks>;
