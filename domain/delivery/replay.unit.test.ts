import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { deliveryDecider, wasReplayedBy, type DeliveryCommand, type DeliveryEvent } from "./delivery.js";

const T0 = "2024-05-01T12:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();
const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, maxDurationMs: 60_000 };

const scheduledData: EventData<"delivery.scheduled"> = {
  messageId: "msg_1",
  endpointId: "ep_1",
  eventType: "invoice.paid",
  messageSeq: 3,
  messageReceivedAt: T0,
  registrySeq: 3,
};
const scheduled: DeliveryEvent = { type: "delivery.scheduled", data: scheduledData };
const attempted = (n: number, startS: number, statusCode = 500): DeliveryEvent => ({
  type: "delivery.attempted",
  data: {
    attempt: n,
    startedAt: at(startS),
    latencyMs: 120,
    statusCode,
    errorClass: statusCode >= 500 ? "server_error" : "none",
    error: statusCode >= 500 ? `HTTP ${statusCode} from receiver` : undefined,
  },
});
const retried = (n: number, nextS: number, delayMs: number): DeliveryEvent => ({
  type: "delivery.retry_scheduled",
  data: { attempt: n, nextAttempt: n + 1, nextAttemptAt: at(nextS), delayMs, errorClass: "server_error", reason: "HTTP 500 from receiver" },
});
const deadAt = (n: number, reason = `gave up after 2 attempts: HTTP 500 from receiver`): DeliveryEvent => ({
  type: "delivery.dead_lettered",
  data: { attempt: n, errorClass: "server_error", reason },
});
/** The outcome carrying the attempt it settles, as an attempt is recorded now (one event). */
const settling = (attempt: DeliveryEvent, outcome: DeliveryEvent): DeliveryEvent => ({ ...outcome, data: { ...outcome.data, attempted: attempt.data } }) as DeliveryEvent;
const replayed = (replayId: string, series: number): DeliveryEvent => ({ type: "delivery.replayed", data: { replayId, series } });
const replay = (replayId: string): DeliveryCommand => ({ type: "ReplayDelivery", replayId });
const record = (statusCode: number, nowS: number): DeliveryCommand => ({
  type: "RecordAttempt",
  attempt: { startedAt: at(nowS), latencyMs: 120, statusCode },
  policy,
  now: at(nowS),
  random: 0.5,
});

/** Scheduled, two failed attempts (maxAttempts 2), dead; each attempt and its outcome as two events, as streams written before version 2 hold them. */
const deadHistory: DeliveryEvent[] = [scheduled, attempted(1, 0), retried(1, 5, 5_000), attempted(2, 5), deadAt(2)];

describe("delivery: replay", () => {
  it("replays a dead delivery as series 2", () => {
    given(deliveryDecider, deadHistory)
      .when(replay("rpl_a"))
      .then([replayed("rpl_a", 2)]);
  });

  it("starts a new series that numbers attempts on from the last one", () => {
    expect(fold(deliveryDecider, [...deadHistory, replayed("rpl_a", 2)])).toEqual({
      status: "pending",
      scheduled: scheduledData,
      nextAttempt: 3,
      series: 2,
      seriesFirstAttempt: 3,
      replayIds: ["rpl_a"],
    });
  });

  it("replays a delivery abandoned before any attempt from attempt 1", () => {
    const abandoned: DeliveryEvent = { type: "delivery.dead_lettered", data: { attempt: 0, errorClass: "endpoint_unavailable", reason: "endpoint disabled" } };
    const state = fold(deliveryDecider, [scheduled, abandoned, replayed("rpl_a", 2)]);
    expect(state).toMatchObject({ status: "pending", nextAttempt: 1, seriesFirstAttempt: 1, series: 2 });
  });

  it("is idempotent for the same replay, even once the delivery moved on", () => {
    const history = [...deadHistory, replayed("rpl_a", 2)];
    given(deliveryDecider, history).when(replay("rpl_a")).then([]);
    given(deliveryDecider, [...history, attempted(3, 100, 200), { type: "delivery.succeeded", data: { attempt: 3, statusCode: 200 } }])
      .when(replay("rpl_a"))
      .then([]);
    expect(wasReplayedBy(fold(deliveryDecider, history), "rpl_a")).toBe(true);
    expect(wasReplayedBy(fold(deliveryDecider, history), "rpl_b")).toBe(false);
  });

  it("refuses a delivery that is not dead, and one that does not exist", () => {
    given(deliveryDecider, [scheduled]).when(replay("rpl_a")).thenThrows("conflict");
    given(deliveryDecider, [scheduled, attempted(1, 0, 200), { type: "delivery.succeeded", data: { attempt: 1, statusCode: 200 } }])
      .when(replay("rpl_a"))
      .thenThrows("conflict");
    given(deliveryDecider, [...deadHistory, replayed("rpl_a", 2)])
      .when(replay("rpl_b"))
      .thenThrows("conflict");
    given(deliveryDecider, []).when(replay("rpl_a")).thenThrows("not_found");
  });

  it("replays again after the replayed series dies too, as series 3", () => {
    const history = [...deadHistory, replayed("rpl_a", 2), settling(attempted(3, 100), retried(3, 105, 5_000)), settling(attempted(4, 105), deadAt(4))];
    given(deliveryDecider, history)
      .when(replay("rpl_b"))
      .then([replayed("rpl_b", 3)]);
    expect(fold(deliveryDecider, [...history, replayed("rpl_b", 3)])).toMatchObject({
      nextAttempt: 5,
      series: 3,
      seriesFirstAttempt: 5,
      replayIds: ["rpl_a", "rpl_b"],
    });
  });
});

describe("delivery: the retry budget counts within a series", () => {
  const replayedHistory = [...deadHistory, replayed("rpl_a", 2)];

  it("records the first attempt of the new series as attempt 3 and retries it with the first backoff", () => {
    given(deliveryDecider, replayedHistory)
      .when(record(500, 100))
      .then([settling(attempted(3, 100), retried(3, 105, 5_000))]);
  });

  it("succeeds on the new series", () => {
    given(deliveryDecider, replayedHistory)
      .when(record(200, 100))
      .then([
        {
          type: "delivery.succeeded",
          data: { attempt: 3, statusCode: 200, attempted: { attempt: 3, startedAt: at(100), latencyMs: 120, statusCode: 200, errorClass: "none" } },
        },
      ]);
  });

  it("gives up after maxAttempts of the series, not of the whole history", () => {
    const history = [...replayedHistory, settling(attempted(3, 100), retried(3, 105, 5_000))];
    given(deliveryDecider, history)
      .when(record(500, 105))
      .then([settling(attempted(4, 105), deadAt(4))]);
  });

  it("measures the retry window from the series' first attempt", () => {
    // 100 s after the first series started: outside a 60 s window from T0, inside it from the replay.
    const [outcome] = given(deliveryDecider, replayedHistory).when(record(500, 100)).decided();
    expect(outcome?.type).toBe("delivery.retry_scheduled");
    expect(fold(deliveryDecider, [...replayedHistory, outcome!])).toMatchObject({ seriesStartedAt: at(100) });
    expect(fold(deliveryDecider, [...replayedHistory, attempted(3, 100), retried(3, 105, 5_000)])).toMatchObject({ seriesStartedAt: at(100) });
    const late = [...replayedHistory, settling(attempted(3, 100), retried(3, 158, 58_000))];
    const [last] = given(deliveryDecider, late).when(record(500, 158)).decided();
    expect(last).toMatchObject({ type: "delivery.dead_lettered", data: { attempt: 4 } });
  });

  it("resolves an attempt left open in a replayed series by the series' budget", () => {
    const open = [...replayedHistory, attempted(3, 100)];
    given(deliveryDecider, open)
      .when({ type: "ResolveAttempt", policy, now: at(101), random: 0.5 })
      .then([retried(3, 106, 5_000)]);
  });
});
