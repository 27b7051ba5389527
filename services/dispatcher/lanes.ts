import type { LaneLoad } from "../../domain/delivery/admission.js";

/** Weight of the newest attempt in an endpoint's moving average of attempt latency. */
const LATENCY_WEIGHT = 0.2;

interface Lane {
  /** Start times of the attempts in flight (or of the slots taken), oldest first. */
  slotsTakenAt: number[];
  /** Deliveries waiting for a slot, first come first served; a freed slot goes straight to the first. */
  waiting: Array<(slot: Slot) => void>;
  latencyMs?: number;
  /** When one of its attempts last finished. */
  completedAt?: number;
}

const average = (previous: number | undefined, latest: number) => (previous === undefined ? latest : (1 - LATENCY_WEIGHT) * previous + LATENCY_WEIGHT * latest);

/** A taken slot: give it back once, with the attempt's latency when one was made. */
export type Slot = { release(latencyMs?: number): void };

/**
 * Per-endpoint lanes in one dispatcher: at most `slotsPerEndpoint` attempts in flight to an
 * endpoint, the rest waiting in line in process. A lane is fed only as fast as the admission rule
 * lets it (a slow endpoint's overflow goes back to the server), so one endpoint can never fill the
 * process; a fast one drains its line as quickly as it answers.
 */
export function createLanes({ slotsPerEndpoint, now = Date.now }: { slotsPerEndpoint: number; now?: () => number }) {
  const lanes = new Map<string, Lane>();
  /** Every endpoint's attempts together: what a slow endpoint is slower than. */
  let processLatencyMs: number | undefined;

  const laneOf = (endpointId: string): Lane => {
    const known = lanes.get(endpointId);
    if (known) return known;
    const lane: Lane = { slotsTakenAt: [], waiting: [] };
    lanes.set(endpointId, lane);
    return lane;
  };

  const take = (lane: Lane): Slot => {
    const takenAt = now();
    lane.slotsTakenAt.push(takenAt);
    let released = false;
    return {
      release(latencyMs) {
        if (released) return;
        released = true;
        lane.slotsTakenAt.splice(lane.slotsTakenAt.indexOf(takenAt), 1);
        if (latencyMs !== undefined) {
          lane.latencyMs = average(lane.latencyMs, latencyMs);
          processLatencyMs = average(processLatencyMs, latencyMs);
          lane.completedAt = now();
        }
        const next = lane.waiting.shift();
        if (next) next(take(lane));
      },
    };
  };

  return {
    /** What the admission rule needs to know of the endpoint's lane. */
    load(endpointId: string): LaneLoad {
      const lane = lanes.get(endpointId);
      if (!lane) return { inFlight: 0, queued: 0, slots: slotsPerEndpoint };
      const oldest = lane.slotsTakenAt[0];
      return {
        inFlight: lane.slotsTakenAt.length,
        queued: lane.waiting.length,
        slots: slotsPerEndpoint,
        recentAttemptMs: lane.latencyMs,
        oldestInFlightMs: oldest === undefined ? undefined : now() - oldest,
        sinceCompletionMs: lane.completedAt === undefined ? undefined : now() - lane.completedAt,
        processAttemptMs: processLatencyMs,
      };
    },

    /** Waits in line for one of the endpoint's slots. */
    acquire(endpointId: string): Promise<Slot> {
      const lane = laneOf(endpointId);
      if (lane.slotsTakenAt.length < slotsPerEndpoint && lane.waiting.length === 0) return Promise.resolve(take(lane));
      return new Promise<Slot>((resolve) => lane.waiting.push(resolve));
    },
  };
}

export type Lanes = ReturnType<typeof createLanes>;
