import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../contracts/common.js";
import type { EventData } from "../../contracts/events.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { deliveryDecider, isTerminal, type DeliveryCommand, type DeliveryEvent, type ObservedAttempt, retryWindowOf } from "./delivery.js";

const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY };
const T0 = "2024-05-01T12:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

const scheduledData: EventData<"delivery.scheduled"> = {
  messageId: "msg_1",
  endpointId: "ep_1",
  eventType: "invoice.paid",
  messageSeq: 3,
  messageReceivedAt: T0,
  registrySeq: 3,
};
const scheduled: DeliveryEvent = { type: "delivery.scheduled", data: scheduledData };
const firstSeries = { series: 1, seriesFirstAttempt: 1, replayIds: [] };

const record = (attempt: Omit<ObservedAttempt, "startedAt" | "latencyMs">, nowS = 0, extra: Partial<RetryPolicy> = {}): DeliveryCommand => ({
  type: "RecordAttempt",
  attempt: { startedAt: at(nowS), latencyMs: 120, ...attempt },
  policy: { ...policy, ...extra },
  now: at(nowS),
  random: 0.5,
});

const attemptData = (n: number, startS: number, statusCode = 500): EventData<"delivery.attempted"> => ({
  attempt: n,
  startedAt: at(startS),
  latencyMs: 120,
  statusCode,
  errorClass: "server_error",
  error: `HTTP ${statusCode} from receiver`,
});
/** An attempt on its own, as streams written before the outcomes carried their attempt hold it. */
const attempted = (n: number, startS: number, statusCode = 500): DeliveryEvent => ({ type: "delivery.attempted", data: attemptData(n, startS, statusCode) });
/** A retry without its attempt (version 1, or the outcome of an attempt recorded on its own). */
const retried = (n: number, nextS: number, delayMs: number): DeliveryEvent => ({
  type: "delivery.retry_scheduled",
  data: { attempt: n, nextAttempt: n + 1, nextAttemptAt: at(nextS), delayMs, errorClass: "server_error", reason: "HTTP 500 from receiver" },
});
/** A retry carrying the attempt started at `startS` that it settles: what an attempt appends now. */
const retriedAfter = (n: number, startS: number, nextS: number, delayMs: number): DeliveryEvent => {
  const { data } = retried(n, nextS, delayMs) as Extract<DeliveryEvent, { type: "delivery.retry_scheduled" }>;
  return { type: "delivery.retry_scheduled", data: { ...data, attempted: attemptData(n, startS) } };
};

describe("delivery: schedule", () => {
  it("schedules a delivery", () => {
    given(deliveryDecider, [])
      .when({ type: "ScheduleDelivery", ...scheduledData })
      .then([scheduled]);
    expect(fold(deliveryDecider, [scheduled])).toEqual({ status: "pending", scheduled: scheduledData, nextAttempt: 1, ...firstSeries });
  });

  it("scheduling again changes nothing", () => {
    given(deliveryDecider, [scheduled])
      .when({ type: "ScheduleDelivery", ...scheduledData })
      .then([]);
  });
});

describe("delivery: record an attempt", () => {
  it("succeeds on a 2xx", () => {
    given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 204, responseSnippet: "ok" }))
      .then([
        {
          type: "delivery.succeeded",
          data: { attempt: 1, statusCode: 204, attempted: { attempt: 1, startedAt: T0, latencyMs: 120, statusCode: 204, errorClass: "none", responseSnippet: "ok" } },
        },
      ]);
  });

  it("schedules a retry with backoff on a 5xx", () => {
    given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 500 }))
      .then([retriedAfter(1, 0, 5, 5_000)]);
    expect(fold(deliveryDecider, [scheduled, retriedAfter(1, 0, 5, 5_000)])).toEqual({
      status: "retrying",
      scheduled: scheduledData,
      nextAttempt: 2,
      nextAttemptAt: at(5),
      seriesStartedAt: T0,
      ...firstSeries,
    });
  });

  it("numbers attempts on and backs off by the factor", () => {
    given(deliveryDecider, [scheduled, retriedAfter(1, 0, 5, 5_000)])
      .when(record({ statusCode: 500 }, 5))
      .then([retriedAfter(2, 5, 20, 15_000)]);
  });

  it("goes on from a stream written before version 2, where the attempt and its outcome are two events", () => {
    const twoEvents = [scheduled, attempted(1, 0), retried(1, 5, 5_000)];
    expect(fold(deliveryDecider, twoEvents)).toEqual(fold(deliveryDecider, [scheduled, retriedAfter(1, 0, 5, 5_000)]));
    given(deliveryDecider, twoEvents)
      .when(record({ statusCode: 500 }, 5))
      .then([retriedAfter(2, 5, 20, 15_000)]);
  });

  it("retries on a network error, describing it", () => {
    given(deliveryDecider, [scheduled])
      .when(record({ networkError: "connection_error" }))
      .then([
        {
          type: "delivery.retry_scheduled",
          data: {
            attempt: 1,
            nextAttempt: 2,
            nextAttemptAt: at(5),
            delayMs: 5_000,
            errorClass: "connection_error",
            reason: "connection refused or reset",
            attempted: { attempt: 1, startedAt: T0, latencyMs: 120, errorClass: "connection_error", error: "connection refused or reset" },
          },
        },
      ]);
  });

  it("waits for Retry-After when it is longer than the backoff", () => {
    const [outcome] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 429, retryAfterMs: 60_000 }))
      .decided();
    expect(outcome).toMatchObject({ type: "delivery.retry_scheduled", data: { delayMs: 60_000, nextAttemptAt: at(60), errorClass: "rate_limited" } });
  });

  it("never retries sooner than the backoff", () => {
    const [outcome] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 503, retryAfterMs: 1_000 }))
      .decided();
    expect(outcome).toMatchObject({ data: { delayMs: 5_000, errorClass: "unavailable" } });
  });

  it.each([500, 408])("ignores Retry-After on a %i: only 429 and 503 honour it", (statusCode) => {
    const [outcome] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode, retryAfterMs: 3_600_000 }))
      .decided();
    expect(outcome).toMatchObject({ type: "delivery.retry_scheduled", data: { delayMs: 5_000 } });
  });

  it("bounds Retry-After at one hour", () => {
    const [outcome] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 429, retryAfterMs: 86_400_000 }, 0, { maxDurationMs: 86_400_000 }))
      .decided();
    expect(outcome).toMatchObject({ data: { delayMs: 3_600_000 } });
  });

  it("dead-letters at once on 410, and on other final answers", () => {
    const [gone] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 410 }))
      .decided();
    expect(gone).toEqual({
      type: "delivery.dead_lettered",
      data: {
        attempt: 1,
        errorClass: "gone",
        reason: "HTTP 410 from receiver (gone): endpoint disabled",
        attempted: { attempt: 1, startedAt: T0, latencyMs: 120, statusCode: 410, errorClass: "gone", error: "HTTP 410 from receiver (gone): endpoint disabled" },
      },
    });
    const [notFound] = given(deliveryDecider, [scheduled])
      .when(record({ statusCode: 404 }))
      .decided();
    expect(notFound).toEqual({
      type: "delivery.dead_lettered",
      data: {
        attempt: 1,
        errorClass: "client_error",
        reason: "HTTP 404 from receiver",
        attempted: { attempt: 1, startedAt: T0, latencyMs: 120, statusCode: 404, errorClass: "client_error", error: "HTTP 404 from receiver" },
      },
    });
  });

  it("gives up after maxAttempts, the first attempt included", () => {
    const history = [scheduled, retriedAfter(1, 0, 5, 5_000), retriedAfter(2, 5, 20, 15_000)];
    const [outcome] = given(deliveryDecider, history)
      .when(record({ statusCode: 500 }, 20, { maxAttempts: 3 }))
      .decided();
    expect(outcome).toEqual({
      type: "delivery.dead_lettered",
      data: { attempt: 3, errorClass: "server_error", reason: "gave up after 3 attempts: HTTP 500 from receiver", attempted: attemptData(3, 20) },
    });
  });

  it("gives up when the next attempt would fall outside the retry window", () => {
    const history = [scheduled, retriedAfter(1, 0, 890, 890_000)];
    const [outcome] = given(deliveryDecider, history)
      .when(record({ statusCode: 500 }, 890))
      .decided();
    expect(outcome).toEqual({
      type: "delivery.dead_lettered",
      data: { attempt: 2, errorClass: "server_error", reason: "retry window of 900000 ms exhausted: HTTP 500 from receiver", attempted: attemptData(2, 890) },
    });
  });

  it("refuses an attempt on a delivery that is not waiting for one", () => {
    given(deliveryDecider, [])
      .when(record({ statusCode: 200 }))
      .thenThrows("not_found");
    given(deliveryDecider, [scheduled, attempted(1, 0)])
      .when(record({ statusCode: 200 }))
      .thenThrows("conflict");
    const done: DeliveryEvent = { type: "delivery.succeeded", data: { attempt: 1, statusCode: 200 } };
    given(deliveryDecider, [scheduled, attempted(1, 0, 200), done])
      .when(record({ statusCode: 200 }))
      .thenThrows("conflict");
  });

  it("refuses a time that is not one", () => {
    given(deliveryDecider, [scheduled])
      .when({ ...record({ statusCode: 500 }), now: "yesterday" } as DeliveryCommand)
      .thenThrows("unprocessable");
  });
});

describe("delivery: resolve an attempt an older stream left without outcome", () => {
  const resolve: DeliveryCommand = { type: "ResolveAttempt", policy, now: at(1), random: 0.5 };

  it("decides the outcome from the recorded attempt", () => {
    given(deliveryDecider, [scheduled, attempted(1, 0)])
      .when(resolve)
      .then([retried(1, 6, 5_000)]);
    given(deliveryDecider, [scheduled, attempted(1, 0, 200)])
      .when(resolve)
      .then([{ type: "delivery.succeeded", data: { attempt: 1, statusCode: 200 } }]);
  });

  it("refuses when there is no unresolved attempt", () => {
    given(deliveryDecider, [scheduled]).when(resolve).thenThrows("conflict");
    given(deliveryDecider, [scheduled, attempted(1, 0), retried(1, 5, 5_000)])
      .when(resolve)
      .thenThrows("conflict");
    given(deliveryDecider, []).when(resolve).thenThrows("conflict");
  });
});

describe("delivery: abandon", () => {
  const abandon: DeliveryCommand = { type: "AbandonDelivery", reason: "endpoint deleted", errorClass: "endpoint_unavailable" };

  it("dead-letters a pending delivery with no attempts made", () => {
    given(deliveryDecider, [scheduled])
      .when(abandon)
      .then([{ type: "delivery.dead_lettered", data: { attempt: 0, errorClass: "endpoint_unavailable", reason: "endpoint deleted" } }]);
  });

  it("counts the attempts already made", () => {
    given(deliveryDecider, [scheduled, retriedAfter(1, 0, 5, 5_000)])
      .when(abandon)
      .then([{ type: "delivery.dead_lettered", data: { attempt: 1, errorClass: "endpoint_unavailable", reason: "endpoint deleted" } }]);
  });

  it("refuses to abandon a delivery that is not waiting", () => {
    given(deliveryDecider, []).when(abandon).thenThrows("not_found");
    const dead: DeliveryEvent = { type: "delivery.dead_lettered", data: { attempt: 0, errorClass: "endpoint_unavailable", reason: "x" } };
    given(deliveryDecider, [scheduled, dead]).when(abandon).thenThrows("conflict");
  });
});

describe("delivery: terminal states", () => {
  it("knows succeeded and dead are final", () => {
    const dead: DeliveryEvent = { type: "delivery.dead_lettered", data: { attempt: 0, errorClass: "endpoint_unavailable", reason: "x" } };
    expect(isTerminal(fold(deliveryDecider, [scheduled, dead]))).toBe(true);
    expect(fold(deliveryDecider, [scheduled, dead])).toEqual({ status: "dead", scheduled: scheduledData, attempts: 0, ...firstSeries });
    expect(isTerminal(fold(deliveryDecider, [scheduled]))).toBe(false);
    expect(isTerminal(fold(deliveryDecider, []))).toBe(false);
  });
});

describe("retryWindowOf", () => {
  const scheduledData = { messageId: "msg_w", endpointId: "ep_w", eventType: "w.test", messageSeq: 1, messageReceivedAt: "2026-01-01T00:00:00.000Z", registrySeq: 1 };
  const waiting = (extra: Partial<{ series: number; seriesStartedAt: string }>) =>
    ({ status: "pending", scheduled: scheduledData, nextAttempt: 1, series: 1, seriesFirstAttempt: 1, replayIds: [], ...extra }) as const;

  it("runs from the series' first attempt once there was one", () => {
    expect(retryWindowOf(waiting({ seriesStartedAt: "2026-01-01T00:05:00.000Z" }), 900_000)).toEqual({
      startedAt: Date.parse("2026-01-01T00:05:00.000Z"),
      maxDurationMs: 900_000,
    });
  });

  it("runs from the message's acceptance for a first series never attempted", () => {
    expect(retryWindowOf(waiting({}), 900_000)).toEqual({ startedAt: Date.parse("2026-01-01T00:00:00.000Z"), maxDurationMs: 900_000 });
  });

  it("is absent for a replayed series not yet attempted", () => {
    expect(retryWindowOf(waiting({ series: 2 }), 900_000)).toBeUndefined();
  });
});
