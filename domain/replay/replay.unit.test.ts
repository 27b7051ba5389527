import { describe, expect, it } from "vitest";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { replayDecider, tallyReplay, type ReplayCommand, type ReplayEvent, type ReplaySelection } from "./replay.js";

const byFilter = { filter: { endpointId: "ep_1" } };
const requested: ReplayEvent = { type: "replay.requested", data: { selection: byFilter, deliveryIds: ["dlv_1", "dlv_2"] } };
const request = (selection: ReplaySelection = byFilter, deliveryIds = ["dlv_1", "dlv_2"]): ReplayCommand => ({
  type: "RequestReplay",
  selection,
  deliveryIds,
});
const completed: ReplayEvent = { type: "replay.completed", data: { replayed: ["dlv_1"], skipped: 1 } };

describe("replay: request", () => {
  it("records the selection and the deliveries it named, once each", () => {
    given(replayDecider, [])
      .when(request(byFilter, ["dlv_1", "dlv_2", "dlv_1"]))
      .then([requested]);
    expect(fold(replayDecider, [requested])).toMatchObject({ status: "requested", deliveryIds: ["dlv_1", "dlv_2"] });
  });

  it("treats the same selection again as the same request, whatever it resolves to now", () => {
    given(replayDecider, [requested])
      .when(request(byFilter, ["dlv_3"]))
      .then([]);
    given(replayDecider, [requested, completed]).when(request()).then([]);
  });

  it("refuses a different selection under the same id (idempotency key)", () => {
    given(replayDecider, [requested])
      .when(request({ filter: { endpointId: "ep_2" } }))
      .thenThrows("conflict");
    given(replayDecider, [requested])
      .when(request({ deliveryIds: ["dlv_1"] }))
      .thenThrows("conflict");
  });
});

describe("replay: complete and fail", () => {
  it("completes once", () => {
    given(replayDecider, [requested])
      .when({ type: "CompleteReplay", replayed: ["dlv_1"], skipped: 1 })
      .then([completed]);
    given(replayDecider, [requested, completed])
      .when({ type: "CompleteReplay", replayed: ["dlv_1"], skipped: 1 })
      .then([]);
    expect(fold(replayDecider, [requested, completed])).toMatchObject({ status: "completed", replayed: ["dlv_1"], skipped: 1, selection: byFilter });
  });

  it("fails with a reason, and a finished replay neither fails nor completes again", () => {
    const failed: ReplayEvent = { type: "replay.failed", data: { reason: "boom" } };
    given(replayDecider, [requested]).when({ type: "FailReplay", reason: "boom" }).then([failed]);
    given(replayDecider, [requested, failed]).when({ type: "FailReplay", reason: "again" }).then([]);
    given(replayDecider, [requested, completed]).when({ type: "FailReplay", reason: "late" }).then([]);
    given(replayDecider, [requested, failed]).when({ type: "CompleteReplay", replayed: [], skipped: 0 }).thenThrows("conflict");
  });

  it("refuses to finish a replay that was never requested", () => {
    given(replayDecider, []).when({ type: "CompleteReplay", replayed: [], skipped: 0 }).thenThrows("not_found");
    given(replayDecider, []).when({ type: "FailReplay", reason: "x" }).thenThrows("not_found");
  });
});

describe("replay: tally", () => {
  it("splits named deliveries into replayed ids and a skipped count, each id once", () => {
    const done = new Set(["dlv_1", "dlv_3"]);
    expect(tallyReplay(["dlv_1", "dlv_2", "dlv_3", "dlv_1"], (id) => done.has(id))).toEqual({ replayed: ["dlv_1", "dlv_3"], skipped: 1 });
  });
});
