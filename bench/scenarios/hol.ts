import { Pool } from "undici";
import { createEndpoint, createTenant, ingestBody, type BenchTenant } from "../lib/api.js";
import { durations } from "../lib/durations.js";
import { target, waitForDeliveries, withWorkspace, type Scenario, type Workspace } from "../lib/scenario.js";
import { waitUntilScheduled } from "../lib/resources.js";
import type { Helper } from "../lib/rpc.js";
import { ratio } from "./ingest.js";

/**
 * 6. head-of-line isolation: a healthy endpoint's latency at a steady rate, first alone, then with
 * a dead endpoint of the same tenant holding a backlog of 10,000 deliveries — once failing (500)
 * and once hanging (never answering, so every attempt runs into the 15 s timeout). Target: the
 * healthy endpoint's p99 with the dead one present is within 2× of its p99 alone.
 */
const RATE = 50;
const BACKLOG = 10_000;

type Latency = { p50: number; p99: number; count: number };

async function measure(ws: Workspace, receiver: Helper, tenant: BenchTenant, base: string, path: string, seconds: number): Promise<Latency & { lost: number }> {
  const publisher = await ws.helper(`rate-publisher-${path.split("/").at(-1)}`, "procs/rate-publisher.ts");
  const url = new URL(`${base}/v1/webhooks/ingest`);
  const sent = await publisher.call<{ ids: string[] }>(
    "run",
    { origin: url.origin, path: url.pathname, headers: tenant.headers, eventType: `healthy.${path.split("/").at(-1)}`, rate: RATE, durationS: seconds },
    (seconds + 120) * 1000,
  );
  const arrived = await waitForDeliveries(receiver, { prefix: path, paths: [path], ids: sent.ids }, { timeoutMs: 120_000 });
  const latency = await receiver.call<Latency>("latency", { prefix: path });
  return { ...latency, lost: arrived.missing };
}

/** Ingests `count` events of `eventType` as fast as 50 connections allow. */
async function backlog(base: string, tenant: BenchTenant, eventType: string, count: number): Promise<number> {
  const pool = new Pool(base, { connections: 50 });
  const body = ingestBody(eventType);
  let next = 0;
  let accepted = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await pool.request({ method: "POST", path: "/v1/webhooks/ingest", headers: tenant.headers, body });
      await res.body.dump();
      if (res.statusCode === 202) accepted++;
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  await pool.close();
  return accepted;
}

export const hol: Scenario = {
  name: "hol",
  title: "head-of-line isolation (a dead endpoint with 10,000 pending)",
  needs: [],
  show: [["aloneP99", "alone p99 ms"], ["failingP99", "w/ failing p99"], ["hangingP99", "w/ hanging p99"], ["lost", "lost"]],
  run: ({ quick, receiver, log }) =>
    withWorkspace(async (ws) => {
      const seconds = durations(quick).latencyS;
      const count = quick ? 2_000 : BACKLOG;
      const platform = await ws.platform({ name: "hol" });
      const tenant = await createTenant(platform.url, "bench hol");
      const figures: Record<string, number> = {};
      let lost = 0;
      // A first, unmeasured phase warms the platform up, so "alone" is not a cold start.
      for (const phase of ["warmup", "alone", "failing", "hanging"] as const) {
        if (phase === "failing" || phase === "hanging") {
          // The dead endpoint: its own paths and event types, so only the healthy figures are measured.
          const deadPath = `/${ws.prefix}/dead-${phase}`;
          const dead = await createEndpoint(tenant, { url: `${receiver.info.url}${deadPath}`, eventTypes: [`dead${phase}.*`] });
          await receiver.call("configure", { path: deadPath, secret: dead.secret, status: phase === "failing" ? 500 : 0 });
          const accepted = await backlog(platform.url, tenant, `dead${phase}.event`, count);
          // The backlog is deliveries scheduled for the dead endpoint, not events still being routed.
          await waitUntilScheduled(ws.prefix);
          log(`hol: ${accepted} deliveries queued for the ${phase} endpoint`);
        }
        const path = `/${ws.prefix}/healthy-${phase}`;
        const healthy = await createEndpoint(tenant, { url: `${receiver.info.url}${path}`, eventTypes: [`healthy.healthy-${phase}`] });
        await receiver.call("configure", { path, secret: healthy.secret, status: 200 });
        const result = await measure(ws, receiver, tenant, platform.url, path, phase === "warmup" ? Math.min(5, seconds) : seconds);
        if (phase === "warmup") continue;
        log(`hol ${phase}: healthy p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms over ${result.count}, lost ${result.lost}`);
        figures[`${phase}P50`] = result.p50;
        figures[`${phase}P99`] = result.p99;
        lost += result.lost;
      }
      return { ...figures, lost, rate: RATE, backlog: count };
    }),
  targets: (f) => [
    target("healthy p99 with a failing endpoint ≤ 2× alone", ratio(f("failingP99"), f("aloneP99")), "<=", 2),
    target("healthy p99 with a hanging endpoint ≤ 2× alone", ratio(f("hangingP99"), f("aloneP99")), "<=", 2),
    target("nothing lost", f("lost", "max"), "==", 0),
  ],
};
