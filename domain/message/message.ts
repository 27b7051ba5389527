import type { DomainEventOf, EventData } from "../../contracts/events.js";
import type { Decider } from "../decider.js";
import { DomainError } from "../errors.js";
import { compact } from "../shared/equal.js";
import { assertNever } from "../shared/exhaustive.js";
import { decideFanout, type RoutableEndpoint } from "../routing/fanout.js";

/** Commands the message aggregate accepts. */
export type MessageCommand =
  | { type: "ReceiveMessage"; eventType: string; payload: Record<string, unknown>; eventId?: string; sourceId?: string }
  | { type: "DecideRouting"; messageId: string; registrySeq: number; endpoints: readonly RoutableEndpoint[] };

type Received = EventData<"message.received">;

/** A message: absent, received (awaiting routing), or routed (its decision recorded). */
export type MessageState = { status: "absent" } | ({ status: "received" } & Received) | ({ status: "routed"; routing: EventData<"routing.decided"> } & Received);

/** Events the message aggregate emits. */
export type MessageEvent = DomainEventOf<"message.received"> | DomainEventOf<"routing.decided">;

const decide = (command: MessageCommand, state: MessageState): MessageEvent[] => {
  switch (command.type) {
    case "ReceiveMessage": {
      // Idempotent: the same message id received again (a retried append) is already stored.
      if (state.status !== "absent") return [];
      const { eventType, payload, eventId, sourceId } = command;
      return [{ type: "message.received", data: compact({ eventType, payload, eventId, sourceId }) }];
    }
    case "DecideRouting": {
      if (state.status === "absent") throw new DomainError("not_found", "message not found");
      // A redelivered message keeps its first decision: routing happens once per message.
      if (state.status === "routed") return [];
      const { messageId, registrySeq, endpoints } = command;
      return [{ type: "routing.decided", data: decideFanout({ messageId, eventType: state.eventType, registrySeq, endpoints }) }];
    }
    default:
      return assertNever(command, "message command");
  }
};

const evolve = (state: MessageState, event: MessageEvent): MessageState => {
  switch (event.type) {
    case "message.received":
      return { status: "received", ...event.data };
    case "routing.decided":
      if (state.status === "absent") return state;
      return { ...state, status: "routed", routing: event.data };
    default:
      return assertNever(event, "message event");
  }
};

/** The message aggregate: received once, routed once. */
export const messageDecider: Decider<MessageCommand, MessageState, MessageEvent> = {
  initialState: () => ({ status: "absent" }),
  decide,
  evolve,
};
