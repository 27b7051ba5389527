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

  const withStore = async (append: ApiHarness["deps"]["store"]["append"]) => {
    const { buildApp } = await import("./app.js");
    return buildApp({ ...h.deps, store: { ...h.deps.store, append } });
  };
  const headers = () => ({ authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId });

  it("a request that fails before its append is stored leaves the eventId to the client's retry", async () => {
    const broken = await withStore(async () => {
      throw new Error("boom");
    });
    const payload = { eventType: "a.b", payload: {}, eventId: "evt-retry" };
    expect((await broken.inject({ method: "POST", url: "/v1/webhooks/ingest", headers: headers(), payload })).statusCode).toBe(500);
    await broken.close();
    const retry = await ingest(payload);
    expect(retry.statusCode).toBe(202);
    expect((await storedMessage(t.tenantId, retry.json().messageId)).envelope.data).toMatchObject({ eventId: "evt-retry" });
  });

  it("a request whose append was stored but not acknowledged makes the retry a duplicate, never a second message", async () => {
    let storedId = "";
    const lostAck = await withStore(async (ref, events, options) => {
      await h.deps.store.append(ref, events, options);
      storedId = ref.aggregateId;
      throw new Error("publish ack lost");
    });
    const payload = { eventType: "a.b", payload: {}, eventId: "evt-lost-ack" };
    expect((await lostAck.inject({ method: "POST", url: "/v1/webhooks/ingest", headers: headers(), payload })).statusCode).toBe(500);
    await lostAck.close();
    const retry = await ingest(payload);
    expect(retry.statusCode).toBe(409);
    expect(retry.json().error).toMatchObject({ code: "duplicate_event", details: { messageId: storedId } });
  });

  it("payload must be an object", async () => {
    for (const payload of [[1], "text", 3, null]) {
      expect((await ingest({ eventType: "a.b", payload })).statusCode).toBe(400);
    }
  });
});
