import { describe, expect, it } from "vitest";
import type { EventData } from "../../contracts/events.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { parkedDecider, parkedIdFor, type ParkedEvent } from "./parked.js";

const data: EventData<"parked.added"> = {
  reactor: "router",
  streamSeq: 42,
  subject: "zen.evt.ten_a.cmd.message.msg_1",
  eventType: "message.received",
  reason: "handler_failed",
  failures: 5,
  error: "max_payload size exceeded",
};
const added: ParkedEvent = { type: "parked.added", data };
const requested: ParkedEvent = { type: "parked.replay_requested", data: {} };
const replayed: ParkedEvent = { type: "parked.replayed", data: {} };
const failed: ParkedEvent = { type: "parked.replay_failed", data: { error: "still too large" } };

describe("parked message: park", () => {
  it("records the message, its reactor and the last failure once", () => {
    given(parkedDecider, [])
      .when({ type: "Park", ...data })
      .then([added]);
    given(parkedDecider, [added])
      .when({ type: "Park", ...data, failures: 9 })
      .then([]);
    expect(fold(parkedDecider, [added])).toEqual({ status: "parked", parked: data });
  });

  it("names one aggregate per role and stream sequence", () => {
    expect(parkedIdFor("router", 42)).toBe("pkd_router-42");
    expect(parkedIdFor("dispatcher", 42)).not.toBe(parkedIdFor("router", 42));
  });
});

describe("parked message: replay", () => {
  it("asks for a replay of a parked message, once while it runs", () => {
    given(parkedDecider, [added]).when({ type: "RequestReplay" }).then([requested]);
    given(parkedDecider, [added, requested]).when({ type: "RequestReplay" }).then([]);
  });

  it("refuses a replay of what does not exist or was replayed already", () => {
    given(parkedDecider, []).when({ type: "RequestReplay" }).thenThrows("not_found");
    given(parkedDecider, [added, requested, replayed]).when({ type: "RequestReplay" }).thenThrows("conflict");
  });

  it("completes a running replay, once", () => {
    given(parkedDecider, [added, requested]).when({ type: "CompleteReplay" }).then([replayed]);
    given(parkedDecider, [added, requested, replayed]).when({ type: "CompleteReplay" }).then([]);
    given(parkedDecider, [added]).when({ type: "CompleteReplay" }).then([]);
  });

  it("leaves a message whose replay failed parked, with the error, and replayable again", () => {
    given(parkedDecider, [added, requested]).when({ type: "FailReplay", error: "still too large" }).then([failed]);
    expect(fold(parkedDecider, [added, requested, failed])).toEqual({ status: "parked", parked: data, replayError: "still too large" });
    given(parkedDecider, [added, requested, failed]).when({ type: "RequestReplay" }).then([requested]);
    given(parkedDecider, [added]).when({ type: "FailReplay", error: "x" }).then([]);
  });
});
