import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayDecider } from "../../domain/replay/replay.js";
import { testContext } from "../../test/support/spine.js";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let metrics: Metrics;
beforeAll(async () => {
  metrics = createMetrics();
  h = await startApiHarness({ metrics });
});
const refusals = async (quota: string) => (await metrics.quotaRefusals.get()).values.find((v) => v.labels.quota === quota)?.value ?? 0;
afterAll(() => h?.stop());

type Tenant = Awaited<ReturnType<typeof createTenantWithKey>>;
const as = (t: Tenant) => (method: "POST" | "DELETE", url: string, body?: unknown) =>
  h.call({ method, url, token: t.key, tenantId: t.tenantId, body, headers: { "idempotency-key": randomUUID() } });
const setLimits = async (t: Tenant, limits: Record<string, unknown>) => {
  const res = await h.call({ method: "PUT", url: `/v1/tenants/${t.tenantId}/limits`, body: limits });
  expect(res.statusCode).toBe(200);
  await h.deps.view.waitFor(Number(res.headers["x-zen-seq"]), 5_000);
  return res;
};

describe("tenant quotas", () => {
  it("refuses an endpoint past the tenant's quota with 422 quota_exceeded naming it; other tenants are not held to it; a deleted one frees a place", async () => {
    const limited = await createTenantWithKey(h, ["webhooks:write"], "Quota");
    const other = await createTenantWithKey(h, ["webhooks:write"], "Unlimited");
    const set = await setLimits(limited, { maxEndpoints: 2 });
    expect(set.json().limits).toMatchObject({ maxEndpoints: 2 });
    const create = (t: Tenant, n: number) => as(t)("POST", "/v1/webhooks/registry", { url: `https://example.com/${n}`, eventTypes: ["*"] });

    const first = await create(limited, 1);
    expect((await create(limited, 2)).statusCode).toBe(201);
    const before = await refusals("endpoints");
    const refused = await create(limited, 3);
    expect(refused.statusCode).toBe(422);
    expect(await refusals("endpoints")).toBe(before + 1);
    expect(refused.json().error).toMatchObject({ code: "quota_exceeded", details: { quota: "endpoints", limit: 2 } });
    for (let n = 1; n <= 3; n++) expect((await create(other, n)).statusCode).toBe(201);

    const deleted = await as(limited)("DELETE", `/v1/webhooks/registry/${first.json().id}`);
    expect(deleted.statusCode).toBe(204);
    await h.deps.view.waitFor(Number(deleted.headers["x-zen-seq"]), 5_000);
    expect((await create(limited, 4)).statusCode).toBe(201);
  });

  it("refuses a source past the tenant's quota, and the operator can lift it; other tenants are not held to it", async () => {
    const limited = await createTenantWithKey(h, ["webhooks:write"], "Sources");
    const other = await createTenantWithKey(h, ["webhooks:write"], "OtherSources");
    await setLimits(limited, { maxSources: 1 });
    const create = (t: Tenant = limited) => as(t)("POST", "/v1/webhooks/sources", { name: "github", scheme: "github" });
    expect((await create()).statusCode).toBe(201);
    const before = await refusals("sources");
    const refused = await create();
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error).toMatchObject({ code: "quota_exceeded", details: { quota: "sources", limit: 1 } });
    expect(await refusals("sources")).toBe(before + 1);
    for (let n = 0; n < 2; n++) expect((await create(other)).statusCode).toBe(201);
    await setLimits(limited, { maxSources: null });
    expect((await create()).statusCode).toBe(201);
  });

  it("refuses a test send past the tenant's a-minute quota with 429 naming it and Retry-After; other tenants are not held to it", async () => {
    const limited = await createTenantWithKey(h, ["webhooks:write"], "TestSends");
    const other = await createTenantWithKey(h, ["webhooks:write"], "OtherTestSends");
    await setLimits(limited, { testSendsPerMinute: 2 });
    // A URL that resolves nowhere: the send is answered (with its error), no network traffic leaves.
    const send = (t: Tenant) => as(t)("POST", "/v1/webhooks/test", { url: "https://receiver.example.invalid/hook", eventType: "a.b", payload: {} });
    expect((await send(limited)).statusCode).toBe(200);
    expect((await send(limited)).statusCode).toBe(200);
    const before = await refusals("test_sends");
    const refused = await send(limited);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toMatchObject({ code: "rate_limited", details: { quota: "test_sends", limit: 2 } });
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(await refusals("test_sends")).toBe(before + 1);
    for (let n = 0; n < 3; n++) expect((await send(other)).statusCode).toBe(200);
  });

  it("refuses a DLQ replay while the tenant has its quota of replays running; a completed one frees a place; other tenants are not held to it", async () => {
    const limited = await createTenantWithKey(h, ["dlq:replay"], "Replays");
    const other = await createTenantWithKey(h, ["dlq:replay"], "OtherReplays");
    await setLimits(limited, { maxReplaysInFlight: 1 });
    // No replayer runs here: a requested replay stays pending until its completion is recorded below.
    const replay = (t: Tenant) => as(t)("POST", "/v1/webhooks/dlq/replay", { deliveryIds: ["dlv_none_x"] });
    /** A replay asked for once the read models hold `minSeq` (so the quota counts what came before). */
    const replayAfter = (minSeq: unknown, deliveryId: string) =>
      h.call({
        method: "POST",
        url: "/v1/webhooks/dlq/replay",
        token: limited.key,
        tenantId: limited.tenantId,
        body: { deliveryIds: [deliveryId] },
        headers: { "x-zen-min-seq": String(minSeq), "idempotency-key": randomUUID() },
      });
    const first = await replay(limited);
    expect(first.statusCode).toBe(202);
    const before = await refusals("replays_in_flight");
    const second = await replayAfter(first.headers["x-zen-seq"], "dlv_none_y");
    expect(second.statusCode).toBe(429);
    expect(await refusals("replays_in_flight")).toBe(before + 1);
    expect(second.json().error).toMatchObject({ code: "rate_limited", details: { quota: "replays_in_flight", limit: 1 } });
    expect(second.headers["retry-after"]).toBe("5");
    expect((await replay(other)).statusCode).toBe(202);
    expect((await replay(other)).statusCode).toBe(202);

    const replayId = first.json().replayId as string;
    const ref = { tenantId: limited.tenantId, aggregateType: "replay" as const, aggregateId: replayId };
    const done = await h.deps.store.handle(
      ref,
      replayDecider,
      { type: "CompleteReplay", replayed: [], skipped: 1 },
      { causeId: `${replayId}:completed`, context: testContext() },
    );
    expect((await replayAfter(done.lastSeq, "dlv_none_z")).statusCode).toBe(202);
  });

  it("refuses ingest past the tenant's payload bytes a second, and a day, with 429 naming each; other tenants are not held to them", async () => {
    const ingest = (t: Tenant) =>
      h.call({ method: "POST", url: "/v1/webhooks/ingest", token: t.key, tenantId: t.tenantId, body: { eventType: "a.b", payload: { text: "x".repeat(600) } } });
    const perSecond = await createTenantWithKey(h, ["ingest"], "BytesPerSecond");
    const perDay = await createTenantWithKey(h, ["ingest"], "BytesPerDay");
    const other = await createTenantWithKey(h, ["ingest"], "Bytes");
    await setLimits(perSecond, { payloadBytesPerSecond: 1_500 });
    await setLimits(perDay, { payloadBytesPerDay: 1_500 });

    for (const [tenant, quota, limit] of [
      [perSecond, "payload_bytes_per_second", 1_500],
      [perDay, "payload_bytes_per_day", 1_500],
    ] as const) {
      expect((await ingest(tenant)).statusCode).toBe(202);
      expect((await ingest(tenant)).statusCode).toBe(202);
      const before = await refusals(quota);
      const refused = await ingest(tenant);
      expect(refused.statusCode, quota).toBe(429);
      expect(refused.json().error).toMatchObject({ code: "rate_limited", details: { quota, limit } });
      expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(await refusals(quota)).toBe(before + 1);
    }
    // The day refills over a day: its wait is far longer than the second's.
    expect(Number((await ingest(perDay)).headers["retry-after"])).toBeGreaterThan(60);
    // A payload larger than a whole second's allowance could never pass: 422, not a wait.
    const tiny = await createTenantWithKey(h, ["ingest"], "BytesTiny");
    await setLimits(tiny, { payloadBytesPerSecond: 1_024 });
    const never = await h.call({
      method: "POST",
      url: "/v1/webhooks/ingest",
      token: tiny.key,
      tenantId: tiny.tenantId,
      body: { eventType: "a.b", payload: { text: "x".repeat(2_000) } },
    });
    expect(never.statusCode).toBe(422);
    expect(never.json().error).toMatchObject({ code: "quota_exceeded", details: { quota: "payload_bytes_per_second", limit: 1_024 } });
    for (let n = 0; n < 5; n++) expect((await ingest(other)).statusCode).toBe(202);
  });
});
