import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../contracts/envelope.js";
import { boundCandidates } from "../domain/routing/candidate-set.js";
import { readModelSeq, waitForSeq } from "./checkpoint.js";
import { listAudit } from "./read-models/audit.js";
import { getDelivery, listDeliveries, listDlq, type DeliveryFilter } from "./read-models/deliveries-queries.js";
import { getEndpoint, listEndpoints } from "./read-models/endpoints.js";
import { InvalidCursorError, type Page, type PageRequest } from "./read-models/shared.js";
import { createHarness, envelopes, type Harness } from "./testing/harness.js";

const SECRET = "enc:v1:k1:c2VjcmV0";
const at = (second: number) => new Date(Date.parse("2025-03-01T00:00:00Z") + second * 1000).toISOString();

/** A tenant with endpoints (one deleted), one message and `n` deliveries in chosen states. */
function tenantEvents(tenant: string, n: number): Envelope[] {
  const ev = envelopes(tenant);
  const ep = (i: number) => `ep_${tenant}_${i}`;
  const dlv = (i: number) => `dlv_${tenant}_${i}`;
  const msg = `msg_${tenant}`;
  const out: Envelope[] = [ev("tenant", tenant, "tenant.created", { name: tenant })];
  for (const i of [1, 2, 3]) out.push(ev("endpoint", ep(i), "endpoint.registered", { url: `https://h/${i}`, eventTypes: ["*"], secret: SECRET }, at(i)));
  out.push(ev("endpoint", ep(3), "endpoint.deleted", {}, at(10)));
  out.push(ev("message", msg, "message.received", { eventType: "order.created", payload: { id: 1 } }));
  const targets = Array.from({ length: n }, (_, i) => ({ endpointId: ep((i % 2) + 1), deliveryId: dlv(i + 1) }));
  out.push(
    ev("message", msg, "routing.decided", {
      eventType: "order.created",
      strategy: "fanout",
      registrySeq: 5,
      ...boundCandidates([1, 2].map((i) => ({ endpointId: ep(i), matched: true, reason: "*" }))),
      targets,
    }),
  );
  targets.forEach(({ endpointId, deliveryId }, i) => {
    // Deliveries 3 and 4 share a timestamp: the id breaks the tie.
    const when = at(100 + (i === 3 ? 2 : i));
    out.push(
      ev(
        "delivery",
        deliveryId,
        "delivery.scheduled",
        {
          messageId: msg,
          endpointId,
          eventType: i === 0 ? "order.special" : "order.created",
          messageSeq: 5,
          messageReceivedAt: when,
          registrySeq: 5,
        },
        when,
      ),
    );
  });
  const attempt = (i: number, a: number) =>
    ev("delivery", dlv(i), "delivery.attempted", {
      attempt: a,
      startedAt: at(200 + a),
      latencyMs: a,
      statusCode: 500,
      errorClass: "server_error",
    });
  out.push(attempt(2, 1), attempt(2, 2));
  out.push(ev("delivery", dlv(2), "delivery.dead_lettered", { attempt: 2, errorClass: "server_error", reason: "max attempts" }, at(300)));
  if (n >= 4) {
    out.push(attempt(4, 1), ev("delivery", dlv(4), "delivery.dead_lettered", { attempt: 1, errorClass: "gone", reason: "410" }, at(400)));
    out.push(
      attempt(3, 1),
      ev("delivery", dlv(3), "delivery.retry_scheduled", {
        attempt: 1,
        nextAttempt: 2,
        nextAttemptAt: at(500),
        delayMs: 5000,
        errorClass: "server_error",
        reason: "500",
      }),
    );
  }
  return out;
}

async function collect<T>(fetch: (page: PageRequest) => Promise<Page<T>>, limit: number): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await fetch({ limit, cursor });
    pages.push(page.data);
    cursor = page.nextCursor;
  } while (cursor && pages.length < 20);
  return pages;
}

describe("read-model queries", () => {
  let h: Harness;
  const A = "ten_a";
  const B = "ten_b";
  const deliveries = (f: DeliveryFilter) => listDeliveries(h.db, A, f).then((p) => p.data.map((d) => d.id));

  beforeAll(async () => {
    h = await createHarness();
    const seqs = await h.publish([...tenantEvents(A, 7), ...tenantEvents(B, 2)]);
    await h.projector(5).start();
    expect(await waitForSeq(h.db, seqs.at(-1)!, 10_000)).toBe(true);
    expect(await readModelSeq(h.db)).toBe(seqs.at(-1));
  });
  afterAll(async () => h?.cleanup());

  it("pages deliveries newest first with an opaque cursor", async () => {
    const pages = await collect((p) => listDeliveries(h.db, A, p), 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((d) => d.id)).toEqual([7, 6, 5, 4, 3, 2, 1].map((i) => `dlv_${A}_${i}`));
    expect(await waitForSeq(h.db, 1_000_000, 50)).toBe(false);
  });

  it("filters deliveries by status, endpoint, event type, message and time", async () => {
    expect(await deliveries({ status: "dead" })).toEqual([`dlv_${A}_4`, `dlv_${A}_2`]);
    expect(await deliveries({ status: "retrying" })).toEqual([`dlv_${A}_3`]);
    expect(await deliveries({ endpointId: `ep_${A}_1` })).toEqual([7, 5, 3, 1].map((i) => `dlv_${A}_${i}`));
    expect(await deliveries({ eventType: "order.special" })).toEqual([`dlv_${A}_1`]);
    expect(await deliveries({ messageId: `msg_${A}`, limit: 500 })).toHaveLength(7);
    expect(await deliveries({ since: at(104), until: at(106) })).toEqual([`dlv_${A}_6`, `dlv_${A}_5`]);
  });

  it("returns a delivery with its attempts in order and the routing decision", async () => {
    const d = await getDelivery(h.db, A, `dlv_${A}_2`);
    expect(d).toMatchObject({ status: "dead", attemptCount: 2, deadReason: "max attempts", lastStatusCode: 500 });
    expect(d!.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, null],
      [2, "dead"],
    ]);
    expect(d!.routing).toMatchObject({ strategy: "fanout", registrySeq: 5, decidedAt: expect.any(String) });
    expect(d!.routing!.targets).toHaveLength(7);
    expect(d!.routing!.candidateSet).toMatchObject({ count: 2, matched: 2, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    expect((await getDelivery(h.db, A, `dlv_${A}_3`))!.attempts[0]!.outcome).toBe("retry");
  });

  it("lists the DLQ with filters and pages", async () => {
    const pages = await collect((p) => listDlq(h.db, A, p), 1);
    expect(pages.flat().map((e) => e.deliveryId)).toEqual([`dlv_${A}_4`, `dlv_${A}_2`]);
    expect((await listDlq(h.db, A, { endpointId: `ep_${A}_2` })).data.map((e) => e.errorClass)).toEqual(["gone", "server_error"]);
    expect((await listDlq(h.db, A, { until: at(400) })).data.map((e) => e.deliveryId)).toEqual([`dlv_${A}_2`]);
  });

  it("lists live endpoints only, and pages the audit log", async () => {
    const eps = await collect((p) => listEndpoints(h.db, A, p), 1);
    expect(eps.flat().map((e) => e.id)).toEqual([`ep_${A}_2`, `ep_${A}_1`]);
    expect(await getEndpoint(h.db, A, `ep_${A}_3`)).toBeNull();
    expect(await getEndpoint(h.db, A, `ep_${A}_1`)).toMatchObject({ active: true, eventTypes: ["*"], description: null });
    const audit = await collect((p) => listAudit(h.db, A, p), 2);
    expect(audit.flat().map((a) => a.action)).toEqual(["endpoint.deleted", "endpoint.registered", "endpoint.registered", "endpoint.registered", "tenant.created"]);
  });

  it("keeps tenants apart", async () => {
    expect((await listDeliveries(h.db, B, { limit: 50 })).data.map((d) => d.id)).toEqual([`dlv_${B}_2`, `dlv_${B}_1`]);
    expect(await getDelivery(h.db, B, `dlv_${A}_2`)).toBeNull();
    expect(await getEndpoint(h.db, B, `ep_${A}_1`)).toBeNull();
    expect((await listDlq(h.db, B, {})).data.map((e) => e.deliveryId)).toEqual([`dlv_${B}_2`]);
    expect((await listEndpoints(h.db, B, {})).data.every((e) => e.id.startsWith(`ep_${B}`))).toBe(true);
    expect((await listAudit(h.db, B, {})).data.every((a) => a.aggregateId.includes(B))).toBe(true);
    // A cursor from tenant A's pages shows tenant B nothing of A's.
    const cursor = (await listDeliveries(h.db, A, { limit: 1 })).nextCursor;
    expect((await listDeliveries(h.db, B, { cursor })).data.every((d) => d.id.includes(B))).toBe(true);
  });

  it("refuses a cursor it did not issue, forged ones with times Postgres would not take included", async () => {
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const cursor of [
      "not-a-cursor",
      forged(["1", "x"]),
      forged(["2020-02-30", "x"]),
      forged(["2020-01-01T25:00:00Z", "x"]),
      forged(["2020-01-01T00:00:00Z", 1]),
      forged(["2020-01-01T00:00:00+99", "x"]),
      forged(["2020-01-01T00:00:00Z", "x\u0000"]),
    ]) {
      await expect(listDeliveries(h.db, A, { cursor }), cursor).rejects.toBeInstanceOf(InvalidCursorError);
    }
    // The cursors the read models issue pass.
    const issued = (await listDeliveries(h.db, A, { limit: 1 })).nextCursor!;
    await expect(listDeliveries(h.db, A, { cursor: issued })).resolves.toMatchObject({ data: expect.any(Array) });
  });
});
