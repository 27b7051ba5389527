import type { DomainEventOf, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { deepEqual } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";

type Requested = EventData<"replay.requested">;
/** What a replay asked for: explicit delivery ids or a filter over the DLQ. */
export type ReplaySelection = Requested["selection"];

/** Commands the replay-request aggregate accepts. */
export type ReplayCommand =
  | ({ type: "RequestReplay" } & Requested)
  | { type: "CompleteReplay"; replayed: readonly string[]; skipped: number }
  | { type: "FailReplay"; reason: string };

/** A replay request: asked for, then completed (every named delivery scheduled again or skipped) or failed. */
export type ReplayState =
  | { status: "absent" }
  | ({ status: "requested" } & Requested)
  | ({ status: "completed"; replayed: readonly string[]; skipped: number } & Requested)
  | ({ status: "failed"; reason: string } & Requested);

/** Events the replay-request aggregate emits. */
export type ReplayEvent = DomainEventOf<"replay.requested"> | DomainEventOf<"replay.completed"> | DomainEventOf<"replay.failed">;

/** True when the replay has finished scheduling, one way or the other. */
export const isReplayFinished = (state: ReplayState): boolean => state.status === "completed" || state.status === "failed";

const request = (command: Extract<ReplayCommand, { type: "RequestReplay" }>, state: ReplayState): ReplayEvent[] => {
  const { selection, deliveryIds } = command;
  if (state.status === "absent") return [{ type: "replay.requested", data: { selection, deliveryIds: [...new Set(deliveryIds)] } }];
  // The id comes from the idempotency key: the same key with the same selection is the same
  // request (its deliveries resolved again may differ; the first resolution stands).
  if (deepEqual(state.selection, selection)) return [];
  throw new DomainError("conflict", "this idempotency key was used for a different replay selection");
};

const decide = (command: ReplayCommand, state: ReplayState): ReplayEvent[] => {
  switch (command.type) {
    case "RequestReplay":
      return request(command, state);
    case "CompleteReplay": {
      if (state.status === "absent") throw new DomainError("not_found", "replay not found");
      if (state.status === "completed") return [];
      if (state.status === "failed") throw new DomainError("conflict", "the replay has failed");
      return [{ type: "replay.completed", data: { replayed: [...command.replayed], skipped: command.skipped } }];
    }
    case "FailReplay": {
      if (state.status === "absent") throw new DomainError("not_found", "replay not found");
      if (isReplayFinished(state)) return [];
      return [{ type: "replay.failed", data: { reason: command.reason } }];
    }
    default:
      return assertNever(command, "replay command");
  }
};

const evolve = (state: ReplayState, event: ReplayEvent): ReplayState => {
  switch (event.type) {
    case "replay.requested":
      return { status: "requested", ...event.data };
    case "replay.completed":
      if (state.status === "absent") return state;
      return { status: "completed", selection: state.selection, deliveryIds: state.deliveryIds, ...event.data };
    case "replay.failed":
      if (state.status === "absent") return state;
      return { status: "failed", selection: state.selection, deliveryIds: state.deliveryIds, reason: event.data.reason };
    default:
      return assertNever(event, "replay event");
  }
};

/**
 * The replay-request aggregate (`<prefix>.evt.<tenant>.dlv.replay.<id>`): which dead deliveries
 * to schedule again, and whether that is done. The per-delivery `delivery.replayed` events live
 * on the deliveries; this aggregate records the request and its completion.
 */
export const replayDecider: Decider<ReplayCommand, ReplayState, ReplayEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};

/**
 * Splits the deliveries a replay named into those it scheduled again and a count of the rest,
 * deduplicated, in the order named. `replayed(id)` says whether the delivery now carries this replay.
 */
export const tallyReplay = (deliveryIds: readonly string[], replayed: (deliveryId: string) => boolean) => {
  const unique = [...new Set(deliveryIds)];
  const done = unique.filter(replayed);
  return { replayed: done, skipped: unique.length - done.length };
};
