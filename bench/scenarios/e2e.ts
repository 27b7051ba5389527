import { createEndpoint, createTenant, ingestBody } from "../lib/api.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { requireDrained, target, waitForDeliveries, waitForQuiet, withWorkspace, type Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";
import { ratio } from "./ingest.js";

/**
 * 2. end-to-end: every role in one platform process, one endpoint on the receiver.
 * Throughput: autocannon (50 conns) for e2eS seconds; delivered/s is the distinct verified
 * deliveries over the time from the first request to the last delivery (the pipeline's sustained
 * rate, the drain of any backlog included); every accepted messageId must arrive.
 * Latency: a constant-arrival-rate publisher at a third of that rate; the receiver measures the
 * time from the publisher's send to the webhook's arrival.
 */
const ms = (x: number | null) => (typeof x === "number" && Number.isFinite(x) ? `${x.toFixed(1)} ms` : "—");

/** A drain with no new delivery for this long ends the scenario with an error (quick: shorter). */
const DRAIN_STALL_MS = { full: 60_000, quick: 30_000 };
/** Under `--gate`, how long past the last moment the floor could still be met the drain is given. */
const GATE_GRACE_MS = 5_000;

/**
 * The end-to-end scenario on one platform layout: `e2e` runs every role in one process, `e2e-start`
 * what `npm start` runs (its supervised processes; `BENCH_ZEN_PROCESSES` tries another layout).
 */
function e2eOn(name: string, title: string, roles: string | null): Scenario {
  return {
    name,
    title,
    needs: ["ceiling.ingest"],
    show: [
      ["deliveredPerS", "delivered/s"],
      ["lost", "lost"],
      ["latP50", "lat p50 ms"],
      ["latP99", "lat p99 ms"],
    ],
    run: ({ quick, receiver, log, earlier, gateFloor }) =>
      withWorkspace(async (ws) => {
        const d = durations(quick);
        const stallMs = quick ? DRAIN_STALL_MS.quick : DRAIN_STALL_MS.full;
        // Three endpoints on three paths, by event type, so no phase's stragglers count in another's figures.
        const path = `/${ws.prefix}/e2e`;
        const warmPath = `/${ws.prefix}/warm`;
        const latPath = `/${ws.prefix}/latency`;
        const layout = roles === null && process.env.BENCH_ZEN_PROCESSES ? { ZEN_PROCESSES: process.env.BENCH_ZEN_PROCESSES } : undefined;
        const platform = await ws.platform({ name, roles, env: layout });
        const tenant = await createTenant(platform.url, "bench e2e");
        for (const [p, types] of [
          [path, ["bench.*"]],
          [warmPath, ["warm.*"]],
          [latPath, ["latency.*"]],
        ] as const) {
          const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}${p}`, eventTypes: [...types] });
          await receiver.call("configure", { path: p, secret: endpoint.secret, status: 200 });
        }
        const load = await ws.helper("autocannon", "procs/autocannon.ts");
        const options = { url: `${platform.url}/v1/webhooks/ingest`, connections: INGEST_CONNECTIONS, headers: tenant.headers };

        const warm = await load.call<LoadResult>("run", { ...options, body: ingestBody("warm.up"), durationS: d.warmupS }, (d.warmupS + 60) * 1000);
        await waitForQuiet(receiver, warmPath, warm.ok, { timeoutMs: 120_000 });

        // Throughput, closed loop.
        const r = await load.call<LoadResult>("run", { ...options, body: ingestBody("bench.e2e"), durationS: d.e2eS, collectIds: true }, (d.e2eS + 120) * 1000);
        const ids = r.ids ?? [];
        log(`e2e: accepted ${ids.length} in ${r.durationS.toFixed(1)} s (${r.rps.toFixed(0)}/s); waiting for deliveries`);
        // Under --gate, once the last delivery can no longer come early enough for delivered/s to reach
        // the floor, the figure is decided: stop waiting then (the drain of a slow build stays short).
        const ceiling = earlier("ceiling.ingest", "rps");
        const floorRate = gateFloor && ceiling ? gateFloor * ceiling : null;
        const timeoutMs = (d.e2eS * 10 + 300) * 1000;
        const gateDeadlineMs = floorRate ? r.startedAt + (ids.length / floorRate) * 1000 + GATE_GRACE_MS - Date.now() : null;
        const drained = await waitForDeliveries(
          receiver,
          { prefix: path, paths: [path], ids },
          {
            timeoutMs: gateDeadlineMs === null ? timeoutMs : Math.max(1_000, Math.min(timeoutMs, gateDeadlineMs)),
            stallMs,
            onProgress: (remaining) => log(`e2e: ${ids.length - remaining}/${ids.length} delivered`),
          },
        );
        const reason =
          gateDeadlineMs !== null && gateDeadlineMs < timeoutMs && floorRate
            ? `--gate: at the floor ${gateFloor} × ceiling.ingest ${ceiling!.toFixed(0)} = ${floorRate.toFixed(0)}/s all had to arrive ${(ids.length / floorRate).toFixed(1)} s after the first request; ` +
              `${drained.distinct} did, ${(drained.distinct / ((Date.now() - r.startedAt) / 1000)).toFixed(0)}/s so far`
            : undefined;
        const arrived = requireDrained("e2e", drained, ids.length, { stallMs, reason });
        const windowCount = await receiver.call<number>("countBetween", { prefix: path, from: r.startedAt, to: r.endedAt });
        const lost = arrived.missing;
        const deliveredPerS = arrived.lastAt ? arrived.distinct / ((arrived.lastAt - r.startedAt) / 1000) : 0;
        log(
          `e2e: ${deliveredPerS.toFixed(0)} delivered/s (in the load window ${(windowCount / r.durationS).toFixed(0)}/s), lost ${lost}, duplicates ${arrived.duplicates}, unverified ${arrived.unverified}`,
        );

        // Latency at a third of that rate, open loop.
        const rate = Math.max(1, Math.round(deliveredPerS / 3));
        const publisher = await ws.helper("rate-publisher", "procs/rate-publisher.ts");
        const url = new URL(`${platform.url}/v1/webhooks/ingest`);
        const p = await publisher.call<{ accepted: number; ids: string[]; skipped: number; failed: number; achievedRate: number; ingest: { p50: number; p99: number } }>(
          "run",
          { origin: url.origin, path: url.pathname, headers: tenant.headers, eventType: "latency.probe", rate, durationS: d.latencyS },
          (d.latencyS + 120) * 1000,
        );
        const latArrived = requireDrained(
          "e2e latency",
          await waitForDeliveries(receiver, { prefix: latPath, paths: [latPath], ids: p.ids }, { timeoutMs: 300_000, stallMs }),
          p.ids.length,
          { stallMs },
        );
        const latLost = latArrived.missing;
        const lat = await receiver.call<{ p50: number; p90: number; p99: number; max: number; count: number }>("latency", { prefix: latPath });
        log(`e2e latency at ${rate}/s: p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)} (ingest p99 ${ms(p.ingest.p99)}), lost ${latLost}, skipped ${p.skipped}`);

        return {
          accepted: ids.length,
          ingestRps: r.rps,
          deliveredPerS,
          windowDeliveredPerS: windowCount / r.durationS,
          drainS: arrived.lastAt ? (arrived.lastAt - r.endedAt) / 1000 : null,
          lost,
          duplicates: arrived.duplicates + latArrived.duplicates,
          unverified: arrived.unverified + latArrived.unverified,
          non2xx: r.non2xx + r.errors,
          latRate: rate,
          latAchievedRate: p.achievedRate,
          latP50: lat.p50,
          latP90: lat.p90,
          latP99: lat.p99,
          latMax: lat.max,
          latIngestP99: p.ingest.p99,
          latLost,
          latSkipped: p.skipped + p.failed,
        };
      }),
    targets: (f, c) => [
      target("delivered/s ≥ 0.25 × ceiling.ingest", ratio(f("deliveredPerS"), c("ceiling.ingest.rps")), ">=", 0.25),
      target("nothing lost (throughput + latency phases)", (f("lost", "max") ?? NaN) + (f("latLost", "max") ?? NaN), "==", 0),
      target("every signature verified", f("unverified", "max"), "==", 0),
      target("latency p50 ≤ 15 ms", f("latP50"), "<=", 15),
      target("latency p99 ≤ 75 ms", f("latP99"), "<=", 75),
    ],
  };
}

export const e2e = e2eOn("e2e", "all roles in one process, one endpoint: delivered/s, then latency at 1/3 of it", "api,router,dispatcher,projector,replayer");
export const e2eStart = e2eOn("e2e-start", "npm start's processes, one endpoint: delivered/s, then latency at 1/3 of it", null);
