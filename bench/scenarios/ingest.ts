import { createTenant, ingestBody } from "../lib/api.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { target, withWorkspace, type Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";

/** 1. ingest: the api role alone (ZEN_ROLES=api) under autocannon, 50 connections, 1 KiB events. */
export const ingest: Scenario = {
  name: "ingest",
  title: "POST /v1/webhooks/ingest, api role only, 50 conns, 1 KiB",
  needs: ["ceiling.ingest"],
  show: [
    ["rps", "req/s"],
    ["p99", "p99 ms"],
  ],
  run: ({ quick, log }) =>
    withWorkspace(async (ws) => {
      const d = durations(quick);
      const platform = await ws.platform({ name: "ingest", roles: "api" });
      const tenant = await createTenant(platform.url, "bench ingest");
      const load = await ws.helper("autocannon", "procs/autocannon.ts");
      const options = { url: `${platform.url}/v1/webhooks/ingest`, connections: INGEST_CONNECTIONS, headers: tenant.headers, body: ingestBody("bench.ingest") };
      await load.call("run", { ...options, durationS: d.warmupS }, (d.warmupS + 60) * 1000);
      const r = await load.call<LoadResult>("run", { ...options, durationS: d.ingestS }, (d.ingestS + 60) * 1000);
      log(`ingest: ${r.rps.toFixed(0)} req/s, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}`);
      return { rps: r.rps, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
    }),
  targets: (f, c) => [
    target("throughput ≥ 0.8 × ceiling.ingest", ratio(f("rps"), c("ceiling.ingest.rps")), ">=", 0.8),
    target("p99 ≤ 2 × ceiling.ingest p99", ratio(f("p99"), c("ceiling.ingest.p99")), "<=", 2),
    target("no errors (non-2xx + errors)", sum(f("non2xx", "max"), f("errors", "max")), "==", 0),
  ],
};

export const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
export const sum = (...xs: Array<number | null>): number | null => (xs.some((x) => x === null) ? null : xs.reduce<number>((s, x) => s + x!, 0));
