import { expect } from "vitest";
import type { DomainEvent } from "../../contracts/events.js";
import { fold, type Decider } from "../decider.js";
import { DomainError, type DomainErrorCode } from "../errors.js";

/** What `given(...).when(...)` offers: assert the events decided, or the refusal. */
export interface WhenClause<E> {
  /** Asserts the decided events equal `expected`, and returns them for further checks. */
  then: (expected: E[]) => E[];
  /** Asserts the decider refused with a {@link DomainError} of this code. */
  thenThrows: (code: DomainErrorCode) => DomainError;
  /** The decided events, unasserted, for specs that check only part of them. */
  decided: () => E[];
}

/**
 * Emmett-style spec: `given(decider, history).when(command).then(events)`.
 * The history is folded through `evolve`, so each spec also exercises the decider's evolve.
 */
export const given = <C, S, E extends DomainEvent>(decider: Decider<C, S, E>, events: readonly E[] = []) => ({
  when: (command: C): WhenClause<E> => {
    const decide = () => decider.decide(command, fold(decider, events));
    return {
      then: (expected) => {
        const actual = decide();
        expect(actual).toEqual(expected);
        return actual;
      },
      thenThrows: (code) => {
        let caught: unknown;
        try {
          decide();
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(DomainError);
        expect((caught as DomainError).code).toBe(code);
        return caught as DomainError;
      },
      decided: decide,
    };
  },
});
