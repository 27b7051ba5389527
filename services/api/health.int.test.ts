import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { startApiHarness, type ApiHarness } from "./testing.js";

/** `/ready` and `/readyz` against real NATS and Postgres, with the process probes faked. */
describe("readiness with probes", () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  const ready = async (deps: Parameters<typeof buildApp>[0]) => {
    const app = await buildApp(deps);
    try {
      const res = await app.inject({ method: "GET", url: "/ready" });
      return { status: res.statusCode, body: res.json() };
    } finally {
      await app.close();
    }
  };

  it("is 503 unavailable, naming the consumers, when a durable consumer is not bound", async () => {
    const probes = {
      consumersBound: async () => {
        throw new Error("consumer not found");
      },
    };
    expect(await ready({ ...h.deps, probes })).toEqual({
      status: 503,
      body: { status: "unavailable", checks: { nats: true, postgres: true, consumers: false } },
    });
  });

  it("is 200 degraded when only the read models lag beyond the threshold", async () => {
    const probes = { consumersBound: async () => true, readModelProgress: async () => ({ streamSeq: 20_000, checkpoint: 5_000 }) };
    expect(await ready({ ...h.deps, probes })).toEqual({
      status: 200,
      body: { status: "degraded", checks: { nats: true, postgres: true, consumers: true, readModels: false } },
    });
    const close = { consumersBound: async () => true, readModelProgress: async () => ({ streamSeq: 20_000, checkpoint: 19_990 }) };
    expect((await ready({ ...h.deps, probes: close })).body.status).toBe("ready");
  });

  it("lets an unavailable dependency win over lagging read models", async () => {
    const probes = { consumersBound: async () => true, readModelProgress: async () => ({ streamSeq: 20_000, checkpoint: 0 }) };
    const res = await ready({
      ...h.deps,
      probes,
      readiness: undefined,
      readModels: {
        ...(await import("./read-models.js")).createReadModels(h.db),
        ping: async () => {
          throw new Error("down");
        },
      },
    });
    expect(res).toEqual({ status: 503, body: { status: "unavailable", checks: { nats: true, postgres: false, consumers: true, readModels: false } } });
  });

  it("/readyz follows the migrations check", async () => {
    const app = await buildApp({ ...h.deps, migrationsApplied: async () => false });
    try {
      expect((await app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "unavailable", checks: { migrations: false } });
      expect((await h.call({ method: "GET", url: "/readyz", token: null })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("serves /metrics without a credential, in the Prometheus text format", async () => {
    await h.call({ method: "GET", url: "/health", token: null });
    const res = await h.call({ method: "GET", url: "/metrics", token: null });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toMatch(/^http_request_duration_seconds_count\{route="\/health",method="GET",status_class="2xx"\} \d+/m);
    const unmatched = await h.call({ method: "GET", url: "/no/such/route/ep_123", token: null });
    expect(unmatched.statusCode).toBe(404);
    const after = (await h.call({ method: "GET", url: "/metrics", token: null })).body;
    expect(after).toContain('route="unmatched"');
    expect(after).not.toContain("ep_123");
  });
});
