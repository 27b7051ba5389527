import { sql } from "slonik";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../contracts/envelope.js";
import { applyBatch, readModelSeq, waitForSeq } from "./checkpoint.js";
import { migrate, migrationsApplied } from "./migrate.js";
import { applyEvent } from "./read-models/index.js";
import { parseEnvelope } from "./read-models/shared.js";
import { NewerEventVersionError } from "../domain/upcast.js";
import { boundCandidates } from "../domain/routing/candidate-set.js";
import { rebuildReadModels } from "./rebuild.js";
import { routingDecidedV1 } from "./testing/envelopes.js";
import { createHarness, envelopes, type Harness } from "./testing/harness.js";

const SECRET = "enc:v1:k1:c2VjcmV0IGNpcGhlcnRleHQ=";

const SCENARIO_CANDIDATES = [
  { endpointId: "ep_1", matched: true, reason: 'pattern "invoice.*" matches' },
  { endpointId: "ep_2", matched: true, reason: 'pattern "*" matches' },
];

/**
 * A tenant's registry, one message routed to two endpoints, one delivery dead and one succeeded.
 * The routing decision is of schema version 1, as a stream written before version 2 holds.
 */
function scenario(tenantId: string): Envelope[] {
  const ev = envelopes(tenantId);
  const [msg, d1, d2] = ["msg_1", "dlv_1", "dlv_2"];
  const attempt = (id: string, n: number, statusCode: number) =>
    ev("delivery", id, "delivery.attempted", {
      attempt: n,
      startedAt: `2025-01-01T01:00:0${n}.000Z`,
      latencyMs: 12 * n,
      statusCode,
      errorClass: statusCode < 300 ? "none" : "server_error",
      ...(statusCode < 300 ? {} : { error: "HTTP 500", responseSnippet: "oops" }),
    });
  return [
    ev("tenant", tenantId, "tenant.created", { name: "Acme" }),
    ev("apikey", "key_1", "apikey.created", { name: "ci", scopes: ["ingest"], keyHash: "deadbeef", keyPrefix: "zk_abc" }),
    ev("endpoint", "ep_1", "endpoint.registered", { url: "https://a.example/hook", eventTypes: ["invoice.*"], secret: SECRET, description: "A" }),
    ev("endpoint", "ep_2", "endpoint.registered", { url: "https://b.example/hook", eventTypes: ["*"], secret: SECRET, rateLimit: { perSecond: 5 } }),
    ev("endpoint", "ep_2", "endpoint.updated", { description: "B", rateLimit: null, metadata: { team: "x" } }),
    ev("message", msg, "message.received", { eventType: "invoice.paid", payload: { amount: 3 }, eventId: "inv_1" }),
    { ...ev("message", msg, "future.thing" as never, {} as never) },
    routingDecidedV1(ev, msg, {
      eventType: "invoice.paid",
      strategy: "fanout",
      registrySeq: 6,
      candidates: SCENARIO_CANDIDATES,
      targets: [
        { endpointId: "ep_1", deliveryId: d1 },
        { endpointId: "ep_2", deliveryId: d2 },
      ],
    }),
    ...[d1, d2].map((id, i) =>
      ev("delivery", id, "delivery.scheduled", {
        messageId: msg,
        endpointId: `ep_${i + 1}`,
        eventType: "invoice.paid",
        messageSeq: 6,
        messageReceivedAt: "2025-01-01T00:00:06.000Z",
        registrySeq: 6,
      }),
    ),
    attempt(d1, 1, 500),
    ev("delivery", d1, "delivery.retry_scheduled", {
      attempt: 1,
      nextAttempt: 2,
      nextAttemptAt: "2025-01-01T01:00:06.000Z",
      delayMs: 5000,
      errorClass: "server_error",
      reason: "HTTP 500",
    }),
    attempt(d2, 1, 200),
    ev("delivery", d2, "delivery.succeeded", { attempt: 1, statusCode: 200 }),
    attempt(d1, 2, 500),
    ev("delivery", d1, "delivery.dead_lettered", { attempt: 2, errorClass: "server_error", reason: "max attempts reached" }),
    ev("endpoint", "ep_1", "endpoint.disabled", { reason: "too many failures" }),
    ev("apikey", "key_1", "apikey.revoked", {}),
  ];
}

describe("projector", () => {
  let h: Harness;
  let events: Envelope[];
  let seqs: number[];
  let lastSeq: number;

  beforeAll(async () => {
    h = await createHarness();
    events = scenario("ten_a");
    seqs = await h.publish(events);
    lastSeq = seqs.at(-1)!;
  });
  afterAll(async () => h?.cleanup());

  it("applies migrations once, even when run again", async () => {
    expect(await migrate(h.db)).toEqual([]);
    expect(await migrationsApplied(h.db)).toBe(true);
  });

  it("projects every event, skipping unknown types, and writes each row once when fed twice", async () => {
    const p = h.projector(3);
    await p.start();
    expect(await waitForSeq(h.db, lastSeq, 10_000)).toBe(true);
    const first = await h.dump();
    expect(first.deliveries).toHaveLength(2);
    expect(first.delivery_attempts).toHaveLength(3);
    expect(first.dlq_entries).toHaveLength(1);
    expect(first.audit_log).toHaveLength(7);
    // The version-1 routing decision is projected upcast: its candidate set described as version 2 does.
    expect((first.messages as string[]).map((row) => JSON.parse(row).routing.candidateSet)).toEqual([boundCandidates(SCENARIO_CANDIDATES).candidateSet]);
    // A secret is never copied, sealed or not: an audit row only says one was set ("secret": "[changed]").
    expect(JSON.stringify(first).replaceAll('\\"secret\\": \\"[changed]\\"', "")).not.toMatch(/enc:v1|deadbeef|keyHash|secret/);
    expect(p.appliedSeq()).toBe(lastSeq);

    // The same envelopes through the apply functions again, then through the checkpointed path.
    await h.db.transaction(async (tx) => {
      for (const [i, raw] of events.entries()) {
        const e = parseEnvelope(raw);
        if (e) await applyEvent(tx, e, seqs[i]!);
      }
    });
    expect(await h.dump()).toEqual(first);
    await applyBatch(
      h.db,
      events.map((e, i) => ({ seq: seqs[i]!, envelope: parseEnvelope(e) })),
    );
    expect(await h.dump()).toEqual(first);

    // A restarted projector (and a redelivery from seq 1) changes nothing either.
    await p.stop();
    const again = h.projector();
    await again.start();
    await expect.poll(() => again.appliedSeq(), { timeout: 5_000 }).toBe(lastSeq);
    expect(await h.dump()).toEqual(first);
    await again.stop();
  });

  it("rebuilds identical read models by replaying the stream, while running and from cold", async () => {
    const running = h.projector(4);
    await running.start();
    const before = await h.dump();
    await rebuildReadModels(h.db);
    expect(await readModelSeq(h.db)).toBe(0);
    // The running projector notices the reset at its next batch and replays from the start.
    const [extra] = await h.publish([envelopes("ten_b", Date.parse("2025-02-01T00:00:00Z"))("tenant", "ten_b", "tenant.created", { name: "B" })]);
    expect(await waitForSeq(h.db, extra!, 10_000)).toBe(true);
    const after = await h.dump();
    expect(after.tenants).toHaveLength(2);
    expect({ ...after, tenants: before.tenants, audit_log: before.audit_log, projection_checkpoints: [] }).toEqual({
      ...before,
      projection_checkpoints: [],
    });
    await running.stop();

    await rebuildReadModels(h.db);
    const cold = h.projector();
    await cold.start();
    expect(await waitForSeq(h.db, extra!, 10_000)).toBe(true);
    expect(await h.dump()).toEqual(after);
    await cold.stop();
  });

  it("keeps a second projector on standby until the first stops", async () => {
    const a = h.projector();
    const b = h.projector();
    expect(a.state()).toBe("down");
    await a.start();
    await expect.poll(() => a.appliedSeq(), { timeout: 5_000 }).toBeGreaterThan(0);
    expect(a.state()).toBe("projecting");
    await b.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(b.appliedSeq()).toBe(0);
    // Waiting for the lock is standing by, not down: readiness counts it alive.
    expect(b.state()).toBe("standby");
    await a.stop();
    expect(a.state()).toBe("down");
    await expect.poll(() => b.appliedSeq(), { timeout: 5_000 }).toBeGreaterThan(0);
    await expect.poll(() => b.state(), { timeout: 5_000 }).toBe("projecting");

    // When the lock's connection dies, the projector takes the lock again and goes on.
    await h.db.query(sql.unsafe`
      SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7365001 AND objid = 2`);
    const [seq] = await h.publish([envelopes("ten_c")("tenant", "ten_c", "tenant.created", { name: "C" })]);
    expect(await waitForSeq(h.db, seq!, 10_000)).toBe(true);
    await expect.poll(() => b.appliedSeq(), { timeout: 5_000 }).toBe(seq);
    expect(b.state()).toBe("projecting");
    await b.stop();
    expect(b.state()).toBe("down");
  });
});

describe("projector failures", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h?.cleanup());

  it("retries a failing batch, logging each failure, and never skips it", async () => {
    // A trigger makes every tenant insert fail while the switch table holds a row.
    await h.db.query(sql.unsafe`CREATE TABLE fail_switch (on_ boolean)`);
    await h.db.query(sql.unsafe`INSERT INTO fail_switch VALUES (TRUE)`);
    await h.db.query(sql.unsafe`
      CREATE FUNCTION fail_if_on() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF EXISTS (SELECT 1 FROM fail_switch) THEN RAISE EXCEPTION 'switched off'; END IF; RETURN NEW; END $$`);
    await h.db.query(sql.unsafe`CREATE TRIGGER fail_tenants BEFORE INSERT ON tenants FOR EACH ROW EXECUTE FUNCTION fail_if_on()`);
    const errors: string[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: (_: object, msg?: string) => void errors.push(msg ?? "") };
    const ev = envelopes("ten_f");
    const seqs = await h.publish([
      ev("endpoint", "ep_f", "endpoint.registered", { url: "https://f", eventTypes: ["*"], secret: SECRET }),
      ev("tenant", "ten_f", "tenant.created", { name: "F" }),
    ]);
    const p = h.projector(10, logger);
    await p.start();
    await expect.poll(() => errors.length, { timeout: 5_000 }).toBeGreaterThan(1);
    expect(errors[0]).toMatch(/batch failed/);
    expect(await readModelSeq(h.db)).toBe(0); // the batch is one transaction: nothing half-applied
    await h.db.query(sql.unsafe`DELETE FROM fail_switch`);
    expect(await waitForSeq(h.db, seqs.at(-1)!, 10_000)).toBe(true);
    const dump = await h.dump();
    expect(dump.tenants).toHaveLength(1);
    expect(dump.endpoints).toHaveLength(1);
    await p.stop();
  });
});

describe("projector batches", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h?.cleanup());

  /** A delivery's whole life, and a dead one replayed, with registry events between them. */
  function lives(tenantId: string): Envelope[] {
    const ev = envelopes(tenantId);
    const attempt = (id: string, n: number, statusCode: number) =>
      ev("delivery", id, "delivery.attempted", {
        attempt: n,
        startedAt: `2025-01-01T02:00:0${n}.000Z`,
        latencyMs: 7 * n,
        statusCode,
        errorClass: statusCode < 300 ? "none" : "server_error",
        ...(statusCode < 300 ? {} : { error: "HTTP 503" }),
      });
    const retry = (id: string, n: number) =>
      ev("delivery", id, "delivery.retry_scheduled", {
        attempt: n,
        nextAttempt: n + 1,
        nextAttemptAt: `2025-01-01T02:01:0${n}.000Z`,
        delayMs: 60_000,
        errorClass: "server_error",
        reason: "HTTP 503",
      });
    const schedule = (id: string) =>
      ev("delivery", id, "delivery.scheduled", {
        messageId: "msg_l",
        endpointId: "ep_l",
        eventType: "order.paid",
        messageSeq: 2,
        messageReceivedAt: "2025-01-01T00:00:01.000Z",
        registrySeq: 2,
      });
    return [
      ev("tenant", tenantId, "tenant.created", { name: "L" }),
      ev("endpoint", "ep_l", "endpoint.registered", { url: "https://l.example/h", eventTypes: ["*"], secret: SECRET }),
      ev("message", "msg_l", "message.received", { eventType: "order.paid", payload: { n: 1 } }),
      ev("message", "msg_l", "routing.decided", {
        eventType: "order.paid",
        strategy: "fanout",
        registrySeq: 2,
        ...boundCandidates([{ endpointId: "ep_l", matched: true, reason: "*" }]),
        targets: [
          { endpointId: "ep_l", deliveryId: "dlv_ok" },
          { endpointId: "ep_l", deliveryId: "dlv_dead" },
        ],
      }),
      schedule("dlv_ok"),
      attempt("dlv_ok", 1, 503),
      retry("dlv_ok", 1),
      attempt("dlv_ok", 2, 200),
      ev("delivery", "dlv_ok", "delivery.succeeded", { attempt: 2, statusCode: 200 }),
      schedule("dlv_dead"),
      attempt("dlv_dead", 1, 503),
      ev("delivery", "dlv_dead", "delivery.dead_lettered", { attempt: 1, errorClass: "server_error", reason: "max attempts reached" }),
      ev("replay", "rpl_l", "replay.requested", { selection: { deliveryIds: ["dlv_dead"] }, deliveryIds: ["dlv_dead"] }),
      ev("delivery", "dlv_dead", "delivery.replayed", { replayId: "rpl_l", series: 2 }),
      ev("replay", "rpl_l", "replay.completed", { replayed: ["dlv_dead"], skipped: 0 }),
      attempt("dlv_dead", 2, 200),
      ev("delivery", "dlv_dead", "delivery.succeeded", { attempt: 2, statusCode: 200 }),
    ];
  }

  it("folds a batch holding every event of a delivery to the rows the same events give across many batches", async () => {
    const events = lives("ten_l");
    const seqs = await h.publish(events);
    const last = seqs.at(-1)!;
    expect(
      await applyBatch(
        h.db,
        events.map((e, i) => ({ seq: seqs[i]!, envelope: parseEnvelope(e) })),
      ),
    ).toBe(last);
    const oneBatch = await h.dump();
    const rows = (table: string) => oneBatch[table]!.map((row) => JSON.parse(row as string) as Record<string, unknown>);
    expect(
      rows("deliveries")
        .map((d) => [d.id, d.status, d.attempts, d.last_status_code, d.replay_id])
        .sort(),
    ).toEqual([
      ["dlv_dead", "succeeded", 2, 200, "rpl_l"],
      ["dlv_ok", "succeeded", 2, 200, null],
    ]);
    expect(
      rows("delivery_attempts")
        .map((a) => [a.delivery_id, a.attempt, a.outcome])
        .sort(),
    ).toEqual([
      ["dlv_dead", 1, "dead"],
      ["dlv_dead", 2, "succeeded"],
      ["dlv_ok", 1, "retry"],
      ["dlv_ok", 2, "succeeded"],
    ]);
    expect(rows("dlq_entries")).toEqual([]);
    expect(rows("replays").map((r) => [r.status, r.replayed, r.succeeded, r.failed])).toEqual([["completed", 1, 1, 0]]);
    expect(rows("messages").map((m) => [m.id, m.last_seq, (m.routing as { targets: unknown[] }).targets.length])).toEqual([["msg_l", seqs[3], 2]]);

    for (const batchSize of [1, 2, 3, 5]) {
      await rebuildReadModels(h.db);
      const p = h.projector(batchSize);
      await p.start();
      expect(await waitForSeq(h.db, last, 10_000)).toBe(true);
      await p.stop();
      expect(await h.dump(), `batches of ${batchSize}`).toEqual(oneBatch);
    }
  });
});

describe("projector and events newer than it", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => h?.cleanup());

  it("holds at an event of a schema version newer than it reads (a rolling upgrade), never skipping it", async () => {
    const failures: unknown[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: (details: object) => void failures.push((details as { err?: unknown }).err) };
    const ev = envelopes("ten_v");
    const seqs = await h.publish([
      ev("tenant", "ten_v", "tenant.created", { name: "V" }),
      { ...ev("endpoint", "ep_v", "endpoint.registered", { url: "https://v", eventTypes: ["*"], secret: SECRET }), schemaVersion: 99 },
      ev("tenant", "ten_v2", "tenant.created", { name: "V2" }),
    ]);
    const p = h.projector(10, logger);
    await p.start();
    try {
      await expect.poll(() => failures.filter((err) => err instanceof NewerEventVersionError).length, { timeout: 10_000 }).toBeGreaterThan(1);
      expect(await readModelSeq(h.db)).toBeLessThan(seqs[1]!);
      expect((await h.dump()).endpoints).toHaveLength(0);
    } finally {
      await p.stop();
    }
  });
});
