import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { createIngressLimiter } from "./ingress-limit.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let second: FastifyInstance;

beforeAll(async () => {
  h = await startApiHarness();
  // A second api process on the same NATS prefix: its own limiter, nothing shared in memory.
  second = await buildApp({ ...h.deps, ingress: await createIngressLimiter(h.streams.nc, h.streams.topology) });
});
afterAll(async () => {
  await second?.close();
  await h?.stop();
});

type Tenant = Awaited<ReturnType<typeof createTenantWithKey>>;

async function tenantWithIngress(name: string, ingress?: { capacity: number; refillPerSecond: number }): Promise<Tenant> {
  const t = await createTenantWithKey(h, ["ingest"], name);
  if (ingress) expect((await h.call({ method: "PUT", url: `/v1/tenants/${t.tenantId}/limits`, body: { ingress } })).statusCode).toBe(200);
  return t;
}

const ingest = (app: FastifyInstance, t: Tenant) =>
  app.inject({
    method: "POST",
    url: "/v1/webhooks/ingest",
    headers: { authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId, "content-type": "application/json" },
    payload: JSON.stringify({ eventType: "load.test", payload: {} }),
  });

describe("ingress rate limit", () => {
  it("429 rate_limited with Retry-After and RateLimit-* above the bucket, while another tenant goes on", async () => {
    const small = await tenantWithIngress("Small", { capacity: 20, refillPerSecond: 1 });
    const other = await tenantWithIngress("Other");
    const answers = await Promise.all(Array.from({ length: 40 }, () => ingest(h.app, small)));
    const accepted = answers.filter((a) => a.statusCode === 202);
    const limited = answers.filter((a) => a.statusCode === 429);
    expect(accepted.length).toBeGreaterThanOrEqual(18);
    expect(accepted.length).toBeLessThanOrEqual(21);
    expect(limited.length).toBe(40 - accepted.length);
    const refused = limited[0]!;
    expect(refused.json().error.code).toBe("rate_limited");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["ratelimit-limit"]).toBe("20");
    expect(refused.headers["ratelimit-remaining"]).toBe("0");
    expect(Number(refused.headers["ratelimit-reset"])).toBeGreaterThan(0);
    expect(accepted[0]!.headers["ratelimit-limit"]).toBe("20");
    expect(accepted[0]!.headers["ratelimit-remaining"]).toMatch(/^\d+$/);
    // The same moment, another tenant is not affected, and reads its own (default) bucket.
    const fine = await ingest(h.app, other);
    expect(fine.statusCode).toBe(202);
    expect(fine.headers["ratelimit-limit"]).toBe("2000");
  });

  it("two api instances together admit within 20% of the bucket's allowance over a window", async () => {
    const bucket = { capacity: 50, refillPerSecond: 100 };
    const t = await tenantWithIngress("Shared", bucket);
    const started = Date.now();
    const windowMs = 2_000;
    let admitted = 0;
    let refused = 0;
    // Eight clients per instance, each sending back to back until the window closes.
    const client = async (app: FastifyInstance) => {
      while (Date.now() - started < windowMs) {
        const res = await ingest(app, t);
        if (res.statusCode === 202) admitted++;
        else if (res.statusCode === 429) refused++;
        else throw new Error(`unexpected ${res.statusCode}: ${res.body}`);
      }
    };
    await Promise.all([...Array.from({ length: 8 }, () => client(h.app)), ...Array.from({ length: 8 }, () => client(second))]);
    const elapsedS = (Date.now() - started) / 1000;
    const allowance = bucket.capacity + bucket.refillPerSecond * elapsedS;
    expect(refused).toBeGreaterThan(0); // the offered load was above the bucket
    expect(admitted).toBeLessThanOrEqual(allowance * 1.2);
    expect(admitted).toBeGreaterThanOrEqual(allowance * 0.8);
  });
});
