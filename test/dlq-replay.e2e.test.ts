import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { createTopology } from "../streams/topology.js";
import { readAllEvents } from "./support/nats.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

/**
 * Acceptance (issue 4): "DLQ replay by filter of 1,000 dead deliveries delivers each exactly once
 * more to the (now healthy) receiver, with the original webhook-id, and the replay's progress
 * reaches completed." Plus: ids of another tenant and non-dead ids are skipped, and an
 * Idempotency-Key repeat never starts a second replay.
 */
const DEAD = 1_000;
const ONE_ATTEMPT = { maxAttempts: 1 };
const SCOPES = ["ingest", "webhooks:read", "webhooks:write", "deliveries:read", "dlq:replay"];

type Client = ReturnType<typeof apiClient>;

describe("DLQ replay", () => {
  let receiver: Receiver;
  let zen: TestPlatform;
  let acme: Client;
  let globex: Client;
  let flakyId: string;
  let rejectId: string;
  const messageIds: string[] = [];
  let replayId: string;

  const tenantClient = async (name: string): Promise<Client> => (await createTenant(zen.url, name, SCOPES)).client;

  const register = async (client: Client, path: string, eventTypes: string[], extra: object = {}) => {
    const response = await client("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes, ...extra }, { "idempotency-key": `reg-${path}` });
    expect(response.status).toBe(201);
    receiver.setSecret(path, response.body.secret);
    return response.body.id as string;
  };

  const ingest = async (client: Client, eventType: string, n: number) => {
    const response = await client("POST", "/v1/webhooks/ingest", { eventType, payload: { n } });
    expect(response.status).toBe(202);
    return response.body.messageId as string;
  };

  /** Every DLQ entry of an endpoint, through the api's pages. */
  const dlq = async (client: Client, endpointId: string) => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Array<{ deliveryId: string }>; nextCursor: string | null } } = await client(
        "GET",
        `/v1/webhooks/dlq?endpointId=${endpointId}&limit=500${cursor ? `&cursor=${cursor}` : ""}`,
      );
      ids.push(...page.body.data.map((e) => e.deliveryId));
      cursor = page.body.nextCursor;
    } while (cursor);
    return ids;
  };

  const requestReplay = (client: Client, body: unknown, key: string, headers: Record<string, string> = {}) =>
    client("POST", "/v1/webhooks/dlq/replay", body, { "idempotency-key": key, ...headers });

  const progress = async (client: Client, id: string) => (await client("GET", `/v1/webhooks/dlq/replay/${id}`)).body;

  /** How many requests each webhook-id brought to `path`. */
  const countsOn = (path: string) => {
    const counts = new Map<string, number>();
    for (const r of receiver.on(path)) counts.set(r.webhookId, (counts.get(r.webhookId) ?? 0) + 1);
    return counts;
  };

  const events = () => readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix));

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.behave("/ep/flaky", { status: 400 });
    receiver.behave("/ep/reject", { status: 400 });
    receiver.behave("/ep/globex", { status: 400 });
    zen = await startTestPlatform();

    acme = await tenantClient("Acme");
    globex = await tenantClient("Globex");
    flakyId = await register(acme, "/ep/flaky", ["bulk.*"], { retryPolicy: ONE_ATTEMPT });
    rejectId = await register(acme, "/ep/reject", ["other.*"]);
    const globexEndpoint = await register(globex, "/ep/globex", ["other.*"]);
    for (let i = 0; i < DEAD; i += 50) {
      messageIds.push(...(await Promise.all(Array.from({ length: Math.min(50, DEAD - i) }, (_, j) => ingest(acme, "bulk.created", i + j)))));
    }
    await ingest(acme, "other.thing", 1);
    await ingest(globex, "other.thing", 2);
    await eventually(async () => (await dlq(acme, flakyId)).length === DEAD, 90_000, "1,000 dead deliveries in the DLQ");
    await eventually(
      async () => (await dlq(acme, rejectId)).length === 1 && (await dlq(globex, globexEndpoint)).length === 1,
      30_000,
      "the rejected deliveries in the DLQ",
    );
  }, 180_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it("has each of the 1,000 dead deliveries attempted once so far", () => {
    const counts = countsOn("/ep/flaky");
    expect(counts.size).toBe(DEAD);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  it("refuses a replay without an Idempotency-Key, or without exactly one of ids and filter", async () => {
    const noKey = await acme("POST", "/v1/webhooks/dlq/replay", { filter: { endpointId: flakyId } });
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.code).toBe("idempotency_key_required");
    const both = await requestReplay(acme, { filter: {}, deliveryIds: ["dlv_x"] }, "bad-1");
    expect(both.status).toBe(400);
    expect(both.body.error.code).toBe("invalid_request");
    const neither = await requestReplay(acme, {}, "bad-2");
    expect(neither.status).toBe(400);
    expect(neither.body.error.code).toBe("invalid_request");
  });

  it("replays by filter: every dead delivery is scheduled again and the progress reaches completed", async () => {
    receiver.behave("/ep/flaky", { status: 200 });
    const response = await requestReplay(acme, { filter: { endpointId: flakyId } }, "replay-flaky", { "x-request-id": "req-replay-flaky" });
    expect(response.status).toBe(202);
    expect(response.body.replayId).toMatch(/^rpl_/);
    expect(Number(response.headers.get("x-zen-seq"))).toBeGreaterThan(0);
    replayId = response.body.replayId;
    await eventually(async () => (await progress(acme, replayId)).status === "completed", 60_000, "the replay to complete");
    expect(await progress(acme, replayId)).toMatchObject({ id: replayId, status: "completed", requested: DEAD, replayed: DEAD, skipped: 0 });
    expect(await dlq(acme, flakyId)).toEqual([]);
  });

  // Needs the dispatcher to attempt a delivery after `delivery.replayed`.
  it("delivers each of the 1,000 exactly once more, with its original webhook-id, and counts them succeeded", async () => {
    await eventually(() => [...countsOn("/ep/flaky").values()].every((n) => n === 2), 90_000, "every replayed delivery to arrive again");
    await eventually(async () => (await progress(acme, replayId)).succeeded === DEAD, 30_000, "the replay to count every success");
    await new Promise((r) => setTimeout(r, 1_000));
    const counts = countsOn("/ep/flaky");
    expect([...counts.keys()].sort()).toEqual([...messageIds].sort());
    expect([...counts.values()].every((n) => n === 2)).toBe(true);
    expect(receiver.on("/ep/flaky").every((r) => r.verified)).toBe(true);
    expect(await progress(acme, replayId)).toMatchObject({ status: "completed", replayed: DEAD, succeeded: DEAD, failed: 0 });
    const deliveries = await acme("GET", `/v1/webhooks/deliveries?endpointId=${flakyId}&limit=1`);
    const detail = await acme("GET", `/v1/webhooks/deliveries/${deliveries.body.data[0].id}`);
    expect(detail.body.status).toBe("succeeded");
    expect(detail.body.attempts.map((a: { attempt: number; statusCode: number; outcome: string }) => [a.attempt, a.statusCode, a.outcome])).toEqual([
      [1, 400, "dead"],
      [2, 200, "succeeded"],
    ]);
  });

  it("answers a repeat of the Idempotency-Key with the same replay and never replays twice", async () => {
    const again = await requestReplay(acme, { filter: { endpointId: flakyId } }, "replay-flaky");
    expect(again.status).toBe(202);
    expect(again.body.replayId).toBe(replayId);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await requestReplay(acme, { filter: { endpointId: rejectId } }, "replay-flaky");
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("idempotency_conflict");
    await new Promise((r) => setTimeout(r, 1_000));
    const log = await events();
    expect(log.filter((e) => e.envelope.type === "replay.requested" && e.envelope.aggregateId === replayId)).toHaveLength(1);
    expect(log.filter((e) => e.envelope.type === "delivery.replayed" && (e.envelope.data as { replayId: string }).replayId === replayId)).toHaveLength(DEAD);
    expect([...countsOn("/ep/flaky").values()].every((n) => n <= 2)).toBe(true);
  });

  it("records the replay in the audit trail with its actor and request id", async () => {
    const rows = await zen.platform.db!.any(sql.unsafe`
      SELECT actor_kind, action, request_id, changes FROM audit_log WHERE aggregate_id = ${replayId} ORDER BY occurred_at`);
    expect(rows.map((r) => r.action)).toEqual(["replay.requested", "replay.completed"]);
    expect(rows[0]).toMatchObject({ actor_kind: "apikey", request_id: "req-replay-flaky", changes: { selection: { filter: { endpointId: flakyId } }, requested: DEAD } });
  });

  it("replays by ids, counting another tenant's and non-dead deliveries as skipped", async () => {
    const [acmeDead] = await dlq(acme, rejectId);
    const globexEndpoint = (await globex("GET", "/v1/webhooks/registry")).body.data[0].id as string;
    const [globexDead] = await dlq(globex, globexEndpoint);
    const notDead = (await acme("GET", `/v1/webhooks/deliveries?endpointId=${flakyId}&limit=1`)).body.data[0].id as string;
    const ids = [acmeDead!, globexDead!, notDead, "dlv_doesnotexist"];
    const response = await requestReplay(acme, { deliveryIds: ids }, "replay-ids");
    expect(response.status).toBe(202);
    const id = response.body.replayId as string;
    expect(id).not.toBe(replayId);
    await eventually(async () => (await progress(acme, id)).status === "completed", 30_000, "the id replay to complete");
    expect(await progress(acme, id)).toMatchObject({ requested: 4, replayed: 1, skipped: 3 });
    // Another tenant can neither see this replay nor has its delivery been touched.
    expect((await globex("GET", `/v1/webhooks/dlq/replay/${id}`)).status).toBe(404);
    expect(await dlq(globex, globexEndpoint)).toEqual([globexDead]);
    const log = await events();
    expect(log.filter((e) => e.envelope.type === "delivery.replayed" && e.envelope.aggregateId === globexDead)).toHaveLength(0);
    // Needs the dispatcher: the replayed delivery is attempted again, refused again, and dies again.
    await eventually(async () => (await progress(acme, id)).failed === 1, 30_000, "the replayed delivery to die again");
    expect(receiver.on("/ep/reject")).toHaveLength(2);
    expect(receiver.on("/ep/globex")).toHaveLength(1);
    expect(await dlq(acme, rejectId)).toEqual([acmeDead]);
  });
});
