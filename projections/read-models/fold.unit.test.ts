import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contracts/envelope.js";
import { boundCandidates } from "../../domain/routing/candidate-set.js";
import { envelopes, routingDecidedV1 } from "../testing/envelopes.js";
import { foldDeliveries, type DeliveryEnvelope, type DeliveryRow } from "./deliveries-fold.js";
import { foldMessages } from "./messages.js";
import { parseEnvelope, type EnvelopeOf, type Sequenced } from "./shared.js";

const T = "ten_fold";
const ev = envelopes(T);
const other = envelopes("ten_other");
let seq = 100;
const at = (e: Envelope, s = ++seq) => ({ seq: s, envelope: parseEnvelope(e)! }) as Sequenced<DeliveryEnvelope>;
const scheduled = (id: string, from = ev) =>
  from("delivery", id, "delivery.scheduled", {
    messageId: "msg_1",
    endpointId: "ep_1",
    eventType: "order.paid",
    messageSeq: 1,
    messageReceivedAt: "2025-01-01T00:00:00.000Z",
    registrySeq: 1,
  });
const attempted = (id: string, attempt: number, statusCode: number) =>
  ev("delivery", id, "delivery.attempted", {
    attempt,
    startedAt: `2025-01-01T00:00:0${attempt}.000Z`,
    latencyMs: 10 * attempt,
    statusCode,
    errorClass: statusCode < 300 ? "none" : "server_error",
    ...(statusCode < 300 ? {} : { error: "HTTP 500" }),
  });
const retry = (id: string, attempt: number) =>
  ev("delivery", id, "delivery.retry_scheduled", {
    attempt,
    nextAttempt: attempt + 1,
    nextAttemptAt: "2025-01-01T00:01:00.000Z",
    delayMs: 60_000,
    errorClass: "server_error",
    reason: "HTTP 500",
  });
const stored = (row: Partial<DeliveryRow> & { id: string }): DeliveryRow => ({
  tenantId: T,
  messageId: "msg_1",
  endpointId: "ep_1",
  eventType: "order.paid",
  status: "pending",
  attempts: 0,
  lastStatusCode: null,
  lastErrorClass: null,
  lastError: null,
  nextAttemptAt: null,
  createdAt: "2025-01-01 00:00:00+00",
  updatedAt: "2025-01-01 00:00:00+00",
  succeededAt: null,
  deadAt: null,
  deadReason: null,
  lastSeq: 50,
  replayId: null,
  ...row,
});
const none = { deliveries: [], attempts: [], outcomes: [], dlqDeletes: [], dlqUpserts: [], replays: [] };

describe("foldDeliveries", () => {
  it("folds a whole life in one run to its final rows: scheduled → attempted → retry → attempted → succeeded", () => {
    const run = [
      scheduled("d1"),
      attempted("d1", 1, 500),
      retry("d1", 1),
      attempted("d1", 2, 200),
      ev("delivery", "d1", "delivery.succeeded", { attempt: 2, statusCode: 200 }),
    ].map((e) => at(e));
    const changes = foldDeliveries(new Map(), run);
    expect(changes.deliveries).toEqual([
      expect.objectContaining({
        id: "d1",
        status: "succeeded",
        attempts: 2,
        lastStatusCode: 200,
        lastErrorClass: "none",
        lastError: null,
        nextAttemptAt: null,
        lastSeq: run[4]!.seq,
      }),
    ]);
    expect(changes.attempts.map((a) => [a.attempt, a.outcome, a.statusCode])).toEqual([
      [1, "retry", 500],
      [2, "succeeded", 200],
    ]);
    expect(changes.outcomes).toEqual([]);
    expect(changes.dlqDeletes).toEqual(["d1"]);
    expect(changes.dlqUpserts).toEqual([]);
  });

  it("folds outcomes that carry their attempt (version 2) to the rows the attempt and its outcome as two events give", () => {
    const carrying = (attempt: Envelope, outcome: Envelope) => ({ ...outcome, data: { ...(outcome.data as object), attempted: attempt.data } });
    const succeeded = (attempt: number) => ev("delivery", "d3", "delivery.succeeded", { attempt, statusCode: 200 });
    const v1Run = [scheduled("d3"), attempted("d3", 1, 500), retry("d3", 1), attempted("d3", 2, 200), succeeded(2)];
    const v2Run = [v1Run[0]!, carrying(v1Run[1]!, v1Run[2]!), carrying(v1Run[3]!, v1Run[4]!)];
    const v1 = foldDeliveries(
      new Map(),
      v1Run.map((e, i) => at(e, 1_000 + i)),
    );
    const v2 = foldDeliveries(
      new Map(),
      v2Run.map((e, i) => at(e, 1_000 + (i === 0 ? 0 : 2 * i))),
    );
    expect(v2).toEqual(v1);
    expect(v2.attempts.map((a) => [a.attempt, a.outcome, a.statusCode, a.latencyMs])).toEqual([
      [1, "retry", 500, 10],
      [2, "succeeded", 200, 20],
    ]);
    const dead = ev("delivery", "d4", "delivery.dead_lettered", { attempt: 1, errorClass: "server_error", reason: "gave up" });
    const deadRun = foldDeliveries(new Map([["d4", stored({ id: "d4" })]]), [at(carrying(attempted("d4", 1, 500), dead))]);
    expect(deadRun.attempts).toEqual([expect.objectContaining({ deliveryId: "d4", attempt: 1, outcome: "dead", statusCode: 500, error: "HTTP 500" })]);
    expect(deadRun.deliveries).toEqual([expect.objectContaining({ status: "dead", attempts: 1, lastStatusCode: 500, lastError: "HTTP 500" })]);
  });

  it("changes nothing for events at or below a row's last_seq, of another tenant, or before the delivery exists", () => {
    const row = stored({ id: "d1", lastSeq: 200 });
    expect(foldDeliveries(new Map([["d1", row]]), [at(attempted("d1", 1, 500), 150), at(retry("d1", 1), 200)])).toEqual(none);
    expect(
      foldDeliveries(new Map([["d1", stored({ id: "d1" })]]), [
        at(scheduled("d1", other)),
        at(other("delivery", "d1", "delivery.succeeded", { attempt: 1, statusCode: 200 })),
      ]),
    ).toEqual(none);
    const run = [at(attempted("d2", 1, 200)), at(scheduled("d2"))];
    const early = foldDeliveries(new Map(), run);
    expect(early.attempts).toEqual([]);
    expect(early.deliveries).toEqual([
      expect.objectContaining({ id: "d2", status: "pending", attempts: 0, messageId: "msg_1", createdAt: run[1]!.envelope.occurredAt, lastSeq: run[1]!.seq }),
    ]);
  });

  it("sets the outcome of an attempt stored before the run, unless the run records that attempt again", () => {
    const row = stored({ id: "d1", attempts: 1 });
    expect(foldDeliveries(new Map([["d1", row]]), [at(retry("d1", 1))]).outcomes).toEqual([{ deliveryId: "d1", attempt: 1, outcome: "retry" }]);
    const again = foldDeliveries(new Map([["d1", row]]), [at(retry("d1", 1)), at(attempted("d1", 1, 500))]);
    expect(again.outcomes).toEqual([]);
    expect(again.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: null })]);
  });

  it("dead letters and replays: the last DLQ change wins, a delete first; the replay counts what it started", () => {
    const row = stored({ id: "d1", attempts: 2 });
    const dead = ev("delivery", "d1", "delivery.dead_lettered", { attempt: 2, errorClass: "server_error", reason: "max attempts" });
    const replayed = ev("delivery", "d1", "delivery.replayed", { replayId: "rpl_1", series: 2 });
    const deadThenReplayed = foldDeliveries(new Map([["d1", row]]), [at(dead), at(replayed)]);
    expect(deadThenReplayed).toMatchObject({ dlqDeletes: ["d1"], dlqUpserts: [], replays: [{ replayId: "rpl_1", tenantId: T, replayed: 1, succeeded: 0, failed: 0 }] });
    expect(deadThenReplayed.deliveries).toEqual([expect.objectContaining({ status: "pending", replayId: "rpl_1", deadAt: null, deadReason: null })]);
    const dead2 = ev("delivery", "d1", "delivery.dead_lettered", { attempt: 3, errorClass: "timeout", reason: "again" });
    const replayedThenDead = foldDeliveries(new Map([["d1", row]]), [at(replayed), at(dead2)]);
    expect(replayedThenDead).toMatchObject({
      dlqDeletes: ["d1"],
      dlqUpserts: [
        { deliveryId: "d1", tenantId: T, messageId: "msg_1", endpointId: "ep_1", eventType: "order.paid", errorClass: "timeout", reason: "again", attempts: 3 },
      ],
      replays: [{ replayId: "rpl_1", replayed: 1, failed: 1 }],
      outcomes: [{ deliveryId: "d1", attempt: 3, outcome: "dead" }],
    });
  });
});

describe("foldMessages", () => {
  const received = (id: string) => ev("message", id, "message.received", { eventType: "order.paid", payload: { a: 1 } });
  const routed = (id: string, from = ev) =>
    from("message", id, "routing.decided", { eventType: "order.paid", strategy: "fanout", registrySeq: 1, ...boundCandidates([]), targets: [] });
  const m = (e: Envelope, s = ++seq) => ({ seq: s, envelope: parseEnvelope(e)! }) as Sequenced<EnvelopeOf<"message.received" | "routing.decided">>;

  it("creates a message once, with its routing folded in", () => {
    const run = [m(received("m1")), m(received("m1")), m(routed("m1"))];
    const { created, routed: updates } = foldMessages(new Map(), run);
    expect(created).toEqual([expect.objectContaining({ id: "m1", streamSeq: run[0]!.seq, lastSeq: run[2]!.seq, routedAt: run[2]!.envelope.occurredAt })]);
    expect(updates).toEqual([]);
  });

  it("routes a stored message of the same tenant whose last event is older, and nothing else", () => {
    const storedRows = new Map([["m1", { tenantId: T, lastSeq: 300 }]]);
    expect(foldMessages(storedRows, [m(received("m1"), 400), m(routed("m1"), 300), m(routed("m1", other), 401)])).toEqual({ created: [], routed: [] });
    expect(foldMessages(storedRows, [m(routed("m1"), 402)]).routed).toEqual([expect.objectContaining({ id: "m1", lastSeq: 402 })]);
    expect(foldMessages(new Map(), [m(routed("m2"))])).toEqual({ created: [], routed: [] });
  });

  it("folds a version-1 routing decision upcast: the first candidates and the whole set's description", () => {
    const candidates = Array.from({ length: 150 }, (_, i) => ({ endpointId: `ep_${String(i).padStart(3, "0")}`, matched: i % 3 === 0, reason: `r${i}` }));
    const targets = candidates.filter((c) => c.matched).map(({ endpointId }) => ({ endpointId, deliveryId: `dlv_1_${endpointId.slice(3)}` }));
    const v1 = routingDecidedV1(ev, "m3", { eventType: "order.paid", strategy: "fanout", registrySeq: 1, candidates, targets });
    const { created } = foldMessages(new Map(), [m(received("m3")), m(v1)]);
    expect(created[0]!.routing).toEqual({ strategy: "fanout", registrySeq: 1, ...boundCandidates(candidates), targets });
    expect(created[0]!.routing).toMatchObject({ candidates: candidates.slice(0, 100), candidateSet: { count: 150, matched: 50 } });
  });
});
