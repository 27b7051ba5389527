import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAllEvents } from "../../test/support/nats.js";
import { ConcurrencyError } from "../../streams/event-store.js";
import { buildApp } from "./app.js";
import { createIdempotencyStore } from "./idempotency-store.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write", "ingest"]);
});
afterAll(() => h?.stop());

const register = (key: string | null, url = "https://example.com/hook", app = h.app) =>
  app.inject({
    method: "POST",
    url: "/v1/webhooks/registry",
    headers: { authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId, "content-type": "application/json", ...(key === null ? {} : { "idempotency-key": key }) },
    payload: JSON.stringify({ url, eventTypes: ["*"] }),
  });

/** Endpoints registered in the stream for this tenant: the proof of how often a handler ran. */
async function registrations(): Promise<number> {
  const events = await readAllEvents(h.streams, h.streams.topology);
  return events.filter((e) => e.envelope.tenantId === t.tenantId && e.envelope.type === "endpoint.registered").length;
}

describe("Idempotency-Key", () => {
  it("replays the first response (status, body, Idempotent-Replayed) and 409s a different body", async () => {
    const before = await registrations();
    const first = await register("create-1");
    expect(first.statusCode).toBe(201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const again = await register("create-1");
    expect(again.statusCode).toBe(201);
    expect(again.body).toBe(first.body);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.headers["x-zen-seq"]).toBe(first.headers["x-zen-seq"]);
    expect(again.headers["x-request-id"]).not.toBe(first.headers["x-request-id"]);
    const other = await register("create-1", "https://example.com/other");
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe("idempotency_conflict");
    expect(await registrations()).toBe(before + 1);
  });

  it("400 idempotency_key_required on registry mutations without a key; optional on ingest", async () => {
    const res = await register(null);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe("idempotency_key_required");
    const patch = await h.call({
      method: "PATCH",
      url: "/v1/webhooks/registry/ep_01HZZZZZZZZZZZZZZZZZZZZZZZ",
      token: t.key,
      tenantId: t.tenantId,
      body: { active: false },
      idempotencyKey: null,
    });
    expect(patch.json().error.code).toBe("idempotency_key_required");
    const del = await h.call({ method: "DELETE", url: "/v1/webhooks/registry/ep_01HZZZZZZZZZZZZZZZZZZZZZZZ", token: t.key, tenantId: t.tenantId, idempotencyKey: null });
    expect(del.json().error.code).toBe("idempotency_key_required");
    const ingest = await h.call({
      method: "POST",
      url: "/v1/webhooks/ingest",
      token: t.key,
      tenantId: t.tenantId,
      body: { eventType: "a.b", payload: {} },
      idempotencyKey: null,
    });
    expect(ingest.statusCode).toBe(202);
  });

  it("honours keys on PUT too: the same key replays, another body is a conflict", async () => {
    const put = (refillPerSecond: number) =>
      h.call({ method: "PUT", url: `/v1/tenants/${t.tenantId}/limits`, body: { outbound: { capacity: 10, refillPerSecond } }, idempotencyKey: "limits-1" });
    const first = await put(5);
    expect(first.statusCode).toBe(200);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const again = await put(5);
    expect(again.statusCode).toBe(200);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.body).toBe(first.body);
    const other = await put(7);
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe("idempotency_conflict");
  });

  it("honours keys on ingest too: the same key and body is one message", async () => {
    const send = () =>
      h.call({
        method: "POST",
        url: "/v1/webhooks/ingest",
        token: t.key,
        tenantId: t.tenantId,
        body: { eventType: "a.b", payload: { n: 1 } },
        idempotencyKey: "ingest-1",
      });
    const [a, b] = [await send(), await send()];
    expect(b.json().messageId).toBe(a.json().messageId);
    expect(b.headers["idempotent-replayed"]).toBe("true");
  });

  it("runs exactly once under 20 concurrent identical requests", async () => {
    const before = await registrations();
    const answers = await Promise.all(Array.from({ length: 20 }, () => register("concurrent-1", "https://example.com/concurrent")));
    const created = answers.filter((a) => a.statusCode === 201);
    const inUse = answers.filter((a) => a.statusCode === 409);
    expect(created.length + inUse.length).toBe(20);
    expect(created.filter((a) => a.headers["idempotent-replayed"] !== "true")).toHaveLength(1);
    for (const a of inUse) expect(a.json().error.code).toBe("idempotency_key_in_use");
    const ids = new Set(created.map((a) => a.json().id));
    expect(ids.size).toBe(1);
    expect(await registrations()).toBe(before + 1);
    // Once finished, every retry is the replay.
    const later = await register("concurrent-1", "https://example.com/concurrent");
    expect(later.headers["idempotent-replayed"]).toBe("true");
    expect(later.json().id).toBe([...ids][0]);
  });

  it("keeps the response sealed: the bucket holds no secret of a create's answer, and the replay shows it", async () => {
    const first = await register("sealed-1", "https://example.com/sealed");
    const secret = first.json().secret as string;
    expect(secret).toMatch(/^whsec_/);
    const kv = await new Kvm(h.streams.nc).open(h.streams.topology.bucketName("idempotency"));
    const stored: string[] = [];
    for await (const key of await kv.keys()) stored.push((await kv.get(key))?.string() ?? "");
    expect(stored.some((text) => text.includes('"sealed":true'))).toBe(true);
    expect(stored.filter((text) => text.includes(secret) || text.includes(secret.slice("whsec_".length)))).toEqual([]);
    const replayed = await register("sealed-1", "https://example.com/sealed");
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    expect(replayed.body).toBe(first.body);
  });

  it("replays an answer that shows a secret to the key that made it only; another key of the tenant gets 409 and no secret", async () => {
    const second = await h.call({ method: "POST", url: `/v1/tenants/${t.tenantId}/api-keys`, body: { name: "second key", scopes: ["webhooks:write"] } });
    const other = second.json() as { key: string };
    const first = await register("secret-bound-1", "https://example.com/bound");
    expect(first.statusCode).toBe(201);
    const byOther = await h.app.inject({
      method: "POST",
      url: "/v1/webhooks/registry",
      headers: { authorization: `Bearer ${other.key}`, "x-tenant-id": t.tenantId, "content-type": "application/json", "idempotency-key": "secret-bound-1" },
      payload: JSON.stringify({ url: "https://example.com/bound", eventTypes: ["*"] }),
    });
    expect(byOther.statusCode).toBe(409);
    expect(byOther.json().error.code).toBe("idempotency_conflict");
    expect(byOther.body).not.toContain(first.json().secret);
    // The key that made it still gets its answer back.
    const bySame = await register("secret-bound-1", "https://example.com/bound");
    expect(bySame.headers["idempotent-replayed"]).toBe("true");
    expect(bySame.body).toBe(first.body);
  });

  it("is still honoured by another api instance (a restart) on the same NATS prefix", async () => {
    const first = await register("restart-1", "https://example.com/restart");
    // A new app that opens the bucket itself, as a restarted process does; nothing shared in memory.
    const idempotency = await createIdempotencyStore(h.streams.nc, h.streams.topology, { box: h.deps.secretBox });
    const restarted = await buildApp({ ...h.deps, idempotency });
    try {
      const replayed = await register("restart-1", "https://example.com/restart", restarted);
      expect(replayed.statusCode).toBe(201);
      expect(replayed.body).toBe(first.body);
      expect(replayed.headers["idempotent-replayed"]).toBe("true");
    } finally {
      await restarted.close();
    }
  });

  /** The harness's store whose first `handle` throws `error`. */
  const handleFailingOnce = (error: Error) => {
    let failures = 1;
    return new Proxy(h.deps.store, {
      get(target, property, receiver) {
        if (property === "handle" && failures > 0) {
          return async () => {
            failures -= 1;
            throw error;
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
  };

  it("keeps no 5xx: the key is released and the retry runs", async () => {
    const flaky = await buildApp({ ...h.deps, store: handleFailingOnce(new Error("simulated failure")) });
    try {
      const before = await registrations();
      const failed = await register("five-hundred-1", "https://example.com/500", flaky);
      expect(failed.statusCode).toBe(500);
      const retried = await register("five-hundred-1", "https://example.com/500", flaky);
      expect(retried.statusCode).toBe(201);
      expect(retried.headers["idempotent-replayed"]).toBeUndefined();
      expect(await registrations()).toBe(before + 1);
    } finally {
      await flaky.close();
    }
  });

  it("keeps no 409 conflict (a concurrent change): the retry runs", async () => {
    const racing = await buildApp({ ...h.deps, store: handleFailingOnce(new ConcurrencyError("zen.evt.simulated")) });
    try {
      const before = await registrations();
      const lost = await register("conflict-1", "https://example.com/conflict", racing);
      expect(lost.statusCode).toBe(409);
      expect(lost.json().error.code).toBe("conflict");
      const retried = await register("conflict-1", "https://example.com/conflict", racing);
      expect(retried.statusCode).toBe(201);
      expect(retried.headers["idempotent-replayed"]).toBeUndefined();
      expect(await registrations()).toBe(before + 1);
    } finally {
      await racing.close();
    }
  });

  it("keeps a slow request's claim fresh: a retry after the stale bound is in_use, not a second run", async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    const store = new Proxy(h.deps.store, {
      get(target, property, receiver) {
        if (property === "handle") {
          return async (...args: Parameters<typeof target.handle>) => {
            handled += 1;
            if (handled === 1) await slow; // only the first run is slow: a second one would answer at once
            return target.handle(...args);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
    // A 200 ms stale bound, so the claim is refreshed every 50 ms.
    const idempotency = await createIdempotencyStore(h.streams.nc, h.streams.topology, { box: h.deps.secretBox, staleAfterMs: 200 });
    const app = await buildApp({ ...h.deps, store, idempotency });
    try {
      const before = await registrations();
      const first = register("slow-1", "https://example.com/slow", app);
      await sleep(600);
      const retry = await register("slow-1", "https://example.com/slow", app);
      expect(retry.statusCode).toBe(409);
      expect(retry.json().error.code).toBe("idempotency_key_in_use");
      release();
      expect((await first).statusCode).toBe(201);
      expect(handled).toBe(1);
      expect(await registrations()).toBe(before + 1);
      const later = await register("slow-1", "https://example.com/slow", app);
      expect(later.headers["idempotent-replayed"]).toBe("true");
    } finally {
      release();
      await app.close();
    }
  });

  it("retries keeping the response when complete() fails: the retry is a replay, never a second run", async () => {
    const real = await createIdempotencyStore(h.streams.nc, h.streams.topology, { box: h.deps.secretBox });
    let failures = 2;
    const idempotency = {
      ...real,
      complete: async (...args: Parameters<typeof real.complete>) => {
        if (failures-- > 0) throw new Error("simulated KV failure");
        return real.complete(...args);
      },
    };
    const app = await buildApp({ ...h.deps, idempotency });
    try {
      const before = await registrations();
      const first = await register("complete-retry-1", "https://example.com/complete", app);
      expect(first.statusCode).toBe(201);
      expect(failures).toBe(-1);
      const again = await register("complete-retry-1", "https://example.com/complete", app);
      expect(again.statusCode).toBe(201);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(again.body).toBe(first.body);
      expect(await registrations()).toBe(before + 1);
    } finally {
      await app.close();
    }
  });

  it("lets a stale claim (its process died mid-request) be taken over after the bound", async () => {
    const store = await createIdempotencyStore(h.streams.nc, h.streams.topology, { box: h.deps.secretBox, staleAfterMs: 200 });
    const claimed = await store.claim("stale-test", "fp", Date.now());
    expect(claimed.kind).toBe("claimed");
    expect((await store.claim("stale-test", "fp", Date.now())).kind).toBe("in_use");
    expect((await store.claim("stale-test", "fp", Date.now() + 500)).kind).toBe("claimed");
  });
});
