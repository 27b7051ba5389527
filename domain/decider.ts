import type { DomainEvent } from "../contracts/events.js";

/**
 * An aggregate as a plain decider (Emmett's shape): `decide` turns a command and the current state
 * into the events to append (or throws a {@link DomainError}); `evolve` folds one event into the
 * state. Both are pure: time, ids and randomness arrive on the command.
 */
export interface Decider<Command, State, Event extends DomainEvent = DomainEvent> {
  initialState: () => State;
  decide: (command: Command, state: State) => Event[];
  evolve: (state: State, event: Event) => State;
}

/** Folds events into a state, starting from the decider's initial state. */
export const fold = <C, S, E extends DomainEvent>(decider: Decider<C, S, E>, events: readonly E[]): S => events.reduce(decider.evolve, decider.initialState());
