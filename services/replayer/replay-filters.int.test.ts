import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DomainEvent } from "../../contracts/events.js";
import { readAllEvents } from "../../test/support/nats.js";
import { eventually } from "../../test/support/receiver.js";
import { quietLogger, testContext } from "../../test/support/spine.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "../api/testing.js";
import { createReplayer } from "./replayer.js";

/**
 * DLQ replay by `eventType`, `since` and `until` (API.md "Replay"): the api resolves the filter
 * against the DLQ read model (`since`/`until` bound the time the delivery died, `since` inclusive,
 * `until` exclusive) and the replayer schedules exactly the deliveries it named again. Each case
 * has a tenant of its own holding the same dead deliveries, so one replay cannot take another's.
 */
const DAY = (d: number) => `2025-01-0${d}T00:00:00.000Z`;

/** The fixture of every tenant: four deliveries dead on different days with two event types, one still pending. */
const FIXTURE = [
  { name: "paid1", eventType: "order.paid", deadAt: DAY(1) },
  { name: "sent2", eventType: "invoice.sent", deadAt: DAY(2) },
  { name: "paid3", eventType: "order.paid", deadAt: DAY(3) },
  { name: "sent4", eventType: "invoice.sent", deadAt: DAY(4) },
  { name: "pending", eventType: "order.paid", deadAt: null },
] as const;

const CASES = [
  { label: "eventType", filter: { eventType: "order.paid" }, expected: ["paid1", "paid3"] },
  { label: "since (inclusive)", filter: { since: DAY(2) }, expected: ["sent2", "paid3", "sent4"] },
  { label: "until (exclusive)", filter: { until: DAY(2) }, expected: ["paid1"] },
  { label: "eventType, since and until together", filter: { eventType: "invoice.sent", since: "2025-01-01T12:00:00+00:00", until: DAY(4) }, expected: ["sent2"] },
] as const;

describe("DLQ replay by eventType, since and until", () => {
  let h: ApiHarness;
  let stopReplayer: () => Promise<void>;
  const tenants: Array<Awaited<ReturnType<typeof createTenantWithKey>>> = [];
  const deliveryId = (tenant: number, name: string) => `dlv_t${tenant}_${name}`;

  /** Appends one delivery's events as they happened at `at` (the read model takes `dead_at` from it). */
  const seedDelivery = (tenantId: string, id: string, eventType: string, at: string, events: DomainEvent[]) =>
    h.deps.store.append(
      { tenantId, aggregateType: "delivery", aggregateId: id },
      [
        { type: "delivery.scheduled", data: { messageId: `msg_${id}`, endpointId: "ep_filters", eventType, messageSeq: 1, messageReceivedAt: at, registrySeq: 1 } },
        ...events,
      ],
      { expectedVersion: 0, prevHash: null, causeId: `seed-${id}`, context: { ...testContext(), now: new Date(at) } },
    );

  const dead: DomainEvent[] = [
    { type: "delivery.attempted", data: { attempt: 1, startedAt: DAY(1), latencyMs: 3, statusCode: 400, errorClass: "client_error", error: "HTTP 400" } },
    { type: "delivery.dead_lettered", data: { attempt: 1, errorClass: "client_error", reason: "HTTP 400" } },
  ];

  const as =
    (i: number) =>
    (method: "GET" | "POST", url: string, body?: unknown, headers: Record<string, string> = {}) =>
      h.call({ method, url, token: tenants[i]!.key, tenantId: tenants[i]!.tenantId, body, headers });

  beforeAll(async () => {
    h = await startApiHarness();
    for (const [i] of CASES.entries()) {
      const tenant = await createTenantWithKey(h, ["deliveries:read", "dlq:replay"], `Filters ${i}`);
      tenants.push(tenant);
      for (const d of FIXTURE) {
        await seedDelivery(tenant.tenantId, deliveryId(i, d.name), d.eventType, d.deadAt ?? DAY(1), d.deadAt ? dead : []);
      }
    }
    const replayer = createReplayer({ ...h.streams, store: h.deps.store, logger: quietLogger() });
    await replayer.start();
    stopReplayer = () => replayer.stop();
  });
  afterAll(async () => {
    await stopReplayer?.();
    await h?.stop();
  });

  it.each(CASES.map((c, i) => ({ ...c, i })))("$label: replays exactly the dead deliveries the filter matches", async ({ i, label, filter, expected }) => {
    const call = as(i);
    const dlq = async () => ((await call("GET", "/v1/webhooks/dlq?limit=100")).json().data as Array<{ deliveryId: string }>).map((e) => e.deliveryId).sort();
    const allDead = FIXTURE.filter((d) => d.deadAt).map((d) => deliveryId(i, d.name));
    await eventually(async () => (await dlq()).length === allDead.length, 10_000, "the fixture in the DLQ");

    const response = await call("POST", "/v1/webhooks/dlq/replay", { filter }, { "idempotency-key": `filters-${i}` });
    expect(response.statusCode, label).toBe(202);
    const { replayId } = response.json() as { replayId: string };
    const progress = async () => (await call("GET", `/v1/webhooks/dlq/replay/${replayId}`)).json();
    await eventually(async () => (await progress()).status === "completed", 20_000, `the ${label} replay to complete`);
    expect(await progress(), label).toMatchObject({ status: "completed", requested: expected.length, replayed: expected.length, skipped: 0 });

    const wanted = expected.map((name) => deliveryId(i, name)).sort();
    const events = await readAllEvents(h.streams, h.streams.topology);
    const replayed = events.filter((e) => e.envelope.type === "delivery.replayed" && e.envelope.tenantId === tenants[i]!.tenantId).map((e) => e.envelope.aggregateId);
    expect(replayed.sort(), label).toEqual(wanted);
    // The deliveries the filter did not match are still dead, in the DLQ.
    await eventually(async () => (await dlq()).length === allDead.length - wanted.length, 10_000, "the replayed ones to leave the DLQ");
    expect(await dlq(), label).toEqual(allDead.filter((id) => !wanted.includes(id)).sort());
  });
});
