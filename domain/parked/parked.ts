import type { DomainEventOf, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { assertNever } from "../shared/exhaustive.js";

type Added = EventData<"parked.added">;

/** Commands of a parked message: park it, ask for a replay, and record how the replay went. */
export type ParkedCommand = ({ type: "Park" } & Added) | { type: "RequestReplay" } | { type: "CompleteReplay" } | { type: "FailReplay"; error: string };

/**
 * A parked message: `parked` until the operator asks for a replay, `replaying` until its reactor
 * has handled it again, then `replayed`; a replay that fails leaves it `parked` (with the error).
 */
export type ParkedState = { status: "absent" } | { status: "parked" | "replaying" | "replayed"; parked: Added; replayError?: string };

export type ParkedEvent =
  | DomainEventOf<"parked.added">
  | DomainEventOf<"parked.replay_requested">
  | DomainEventOf<"parked.replayed">
  | DomainEventOf<"parked.replay_failed">;

/** The id of the parked message a reactor's role terminated at a stream sequence: one per (role, message). */
export const parkedIdFor = (reactor: string, streamSeq: number): string => `pkd_${reactor}-${streamSeq}`;

const decide = (command: ParkedCommand, state: ParkedState): ParkedEvent[] => {
  switch (command.type) {
    case "Park": {
      // Parked once: a second reactor process giving up on the same message adds nothing.
      if (state.status !== "absent") return [];
      const { type: _, ...data } = command;
      return [{ type: "parked.added", data }];
    }
    case "RequestReplay":
      if (state.status === "absent") throw new DomainError("not_found", "parked message not found");
      if (state.status === "replayed") throw new DomainError("conflict", "the parked message has been replayed already");
      return state.status === "replaying" ? [] : [{ type: "parked.replay_requested", data: {} }];
    case "CompleteReplay":
      return state.status === "replaying" ? [{ type: "parked.replayed", data: {} }] : [];
    case "FailReplay":
      return state.status === "replaying" ? [{ type: "parked.replay_failed", data: { error: command.error } }] : [];
    default:
      return assertNever(command, "parked command");
  }
};

const evolve = (state: ParkedState, event: ParkedEvent): ParkedState => {
  if (event.type === "parked.added") return { status: "parked", parked: event.data };
  if (state.status === "absent") return state;
  switch (event.type) {
    case "parked.replay_requested":
      return { status: "replaying", parked: state.parked };
    case "parked.replayed":
      return { status: "replayed", parked: state.parked };
    case "parked.replay_failed":
      return { status: "parked", parked: state.parked, replayError: event.data.error };
    default:
      return assertNever(event, "parked event");
  }
};

/** The parked-message aggregate (`<prefix>.evt.<tenant>.ops.parked.<id>`), one per message a reactor gave up on. */
export const parkedDecider: Decider<ParkedCommand, ParkedState, ParkedEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
