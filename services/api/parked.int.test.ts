import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parkedDecider, parkedIdFor, type ParkedCommand } from "../../domain/parked/parked.js";
import { testContext } from "../../test/support/spine.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h?.stop());

/** Records a parked message as the router's reactor would, and returns its id and sequence. */
async function park(tenantId: string, streamSeq: number) {
  const parkedId = parkedIdFor("router", streamSeq);
  const command: ParkedCommand = {
    type: "Park",
    reactor: "router",
    streamSeq,
    subject: `x.evt.${tenantId}.cmd.message.msg_${streamSeq}`,
    eventType: "message.received",
    reason: "handler_failed",
    failures: 5,
    error: "InvalidArgumentError: max_payload size exceeded",
  };
  const { lastSeq } = await h.deps.store.handle({ tenantId, aggregateType: "parked", aggregateId: parkedId }, parkedDecider, command, {
    causeId: `${parkedId}:parked`,
    context: testContext(),
  });
  return { parkedId, seq: String(lastSeq) };
}

describe("parked messages: the operator's list and replay", () => {
  it("lists parked messages of every tenant to the operator only, and replays one", async () => {
    const acme = await createTenantWithKey(h, ["webhooks:read", "webhooks:write"], "Acme");
    const globex = await createTenantWithKey(h, ["webhooks:read"], "Globex");
    const first = await park(acme.tenantId, 1_001);
    const second = await park(globex.tenantId, 1_002);
    const minSeq = { "x-zen-min-seq": second.seq };

    const list = await h.call({ method: "GET", url: "/v1/parked", headers: minSeq });
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((row: { id: string }) => row.id)).toEqual([second.parkedId, first.parkedId]);
    expect(list.json().data[1]).toMatchObject({
      tenantId: acme.tenantId,
      reactor: "router",
      streamSeq: 1_001,
      eventType: "message.received",
      reason: "handler_failed",
      failures: 5,
      error: expect.stringContaining("max_payload"),
      status: "parked",
      replays: 0,
    });
    const filtered = await h.call({ method: "GET", url: `/v1/parked?tenantId=${globex.tenantId}&status=parked&reactor=router` });
    expect(filtered.json().data.map((row: { id: string }) => row.id)).toEqual([second.parkedId]);
    const paged = await h.call({ method: "GET", url: "/v1/parked?limit=1" });
    const next = await h.call({ method: "GET", url: `/v1/parked?limit=1&cursor=${paged.json().nextCursor}` });
    expect(next.json().data.map((row: { id: string }) => row.id)).toEqual([first.parkedId]);

    // A tenant's key sees none of it, its own parked messages included.
    for (const url of ["/v1/parked", `/v1/parked/${first.parkedId}`]) {
      expect((await h.call({ method: "GET", url, token: acme.key, tenantId: acme.tenantId })).statusCode).toBe(403);
    }
    expect((await h.call({ method: "POST", url: `/v1/parked/${first.parkedId}/replay`, token: acme.key, tenantId: acme.tenantId })).statusCode).toBe(403);

    const replay = await h.call({ method: "POST", url: `/v1/parked/${first.parkedId}/replay` });
    expect(replay.statusCode).toBe(202);
    expect(replay.json()).toEqual({ id: first.parkedId, status: "replaying" });
    const one = await h.call({ method: "GET", url: `/v1/parked/${first.parkedId}`, headers: { "x-zen-min-seq": String(replay.headers["x-zen-seq"]) } });
    expect(one.json()).toMatchObject({ status: "replaying", replays: 1 });

    // Replayed already: a second replay is a conflict.
    const ref = { tenantId: acme.tenantId, aggregateType: "parked" as const, aggregateId: first.parkedId };
    const done = await h.deps.store.handle(ref, parkedDecider, { type: "CompleteReplay" }, { causeId: `${first.parkedId}:done`, context: testContext() });
    const again = await h.call({ method: "POST", url: `/v1/parked/${first.parkedId}/replay`, headers: { "x-zen-min-seq": String(done.lastSeq) } });
    expect(again.statusCode).toBe(409);
  });

  it("answers 404 for an unknown parked message or a malformed id (as every route), 400 for a bad filter", async () => {
    expect((await h.call({ method: "GET", url: "/v1/parked/pkd_router-999999" })).statusCode).toBe(404);
    expect((await h.call({ method: "POST", url: "/v1/parked/pkd_router-999999/replay" })).statusCode).toBe(404);
    expect((await h.call({ method: "GET", url: "/v1/parked/not-an-id" })).statusCode).toBe(404);
    expect((await h.call({ method: "GET", url: "/v1/parked?status=lost" })).statusCode).toBe(400);
  });
});
