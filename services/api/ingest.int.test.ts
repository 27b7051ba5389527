import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../contracts/envelope.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["ingest"]);
});
afterAll(() => h?.stop());

const ingest = (body: unknown, tenant = t, headers: Record<string, string> = {}) =>
  h.call({ method: "POST", url: "/v1/webhooks/ingest", token: tenant.key, tenantId: tenant.tenantId, body, headers });

async function storedMessage(tenantId: string, messageId: string) {
  const { topology, jsm } = h.streams;
  const message = await jsm.streams.getMessage(topology.stream, { last_by_subj: topology.aggregateSubject(tenantId, "message", messageId) });
  return { seq: message!.seq, envelope: message!.json<Envelope>() };
}

describe("POST /v1/webhooks/ingest", () => {
  it("202 with the message id and X-Zen-Seq, after the event is in the stream", async () => {
    const res = await ingest({ eventType: "invoice.paid", payload: { amount: 42 } }, t, { "x-request-id": "ingest-req-1" });
    expect(res.statusCode).toBe(202);
    const { messageId, status } = res.json();
    expect(status).toBe("accepted");
    expect(messageId).toMatch(/^msg_[0-9A-Z]{26}$/);
    const { seq, envelope } = await storedMessage(t.tenantId, messageId);
    expect(Number(res.headers["x-zen-seq"])).toBe(seq);
    expect(envelope).toMatchObject({
      type: "message.received",
      tenantId: t.tenantId,
      aggregateType: "message",
      aggregateId: messageId,
      correlationId: "ingest-req-1",
      actor: { kind: "apikey", id: t.keyId },
      data: { eventType: "invoice.paid", payload: { amount: 42 } },
      prevHash: null,
    });
  });

  it("a repeated eventId is 409 duplicate_event naming the first message", async () => {
    const first = await ingest({ eventType: "a.b", payload: {}, eventId: "evt-1" });
    expect(first.statusCode).toBe(202);
    const again = await ingest({ eventType: "a.b", payload: { other: true }, eventId: "evt-1" });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: "duplicate_event", details: { messageId: first.json().messageId } });
  });

  it("eventIds are per tenant, and concurrent repeats accept exactly one", async () => {
    const other = await createTenantWithKey(h, ["ingest"], "Other");
    expect((await ingest({ eventType: "a.b", payload: {}, eventId: "evt-1" }, other)).statusCode).toBe(202);
    const results = await Promise.all(Array.from({ length: 8 }, () => ingest({ eventType: "a.b", payload: {}, eventId: "evt-race" })));
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([202, 409, 409, 409, 409, 409, 409, 409]);
    const winner = results.find((r) => r.statusCode === 202)!.json().messageId;
    for (const r of results.filter((r) => r.statusCode === 409)) expect(r.json().error.details.messageId).toBe(winner);
  });

  it("a failed append releases the eventId, so the retry is accepted", async () => {
    const { buildApp } = await import("./app.js");
    const broken = await buildApp({ ...h.deps, store: { ...h.deps.store, append: async () => { throw new Error("boom"); } } });
    const headers = { authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId };
    const payload = { eventType: "a.b", payload: {}, eventId: "evt-retry" };
    expect((await broken.inject({ method: "POST", url: "/v1/webhooks/ingest", headers, payload })).statusCode).toBe(500);
    await broken.close();
    expect((await ingest(payload)).statusCode).toBe(202);
  });

  it("payload must be an object", async () => {
    for (const payload of [[1], "text", 3, null]) {
      expect((await ingest({ eventType: "a.b", payload })).statusCode).toBe(400);
    }
  });
});
