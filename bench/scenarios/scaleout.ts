import { startNatsCluster } from "../../test/support/nats-cluster.js";
import { createEndpoint, createTenant, ingestBody } from "../lib/api.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { requireDrained, waitForDeliveries, withWorkspace, type Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";

/** A drain with no new delivery for this long ends the scenario with an error. */
const DRAIN_STALL_MS = 60_000;

/**
 * Scale-out on one machine: a 3-node NATS cluster on loopback (the event stream and buckets R3),
 * 2 api, 2 router and 2 dispatcher processes and a projector, one endpoint; two load generators,
 * one per api, with half of e2e's connections each, for e2e's duration. delivered/s as in e2e
 * (distinct verified deliveries over the time from the first request to the last delivery), and
 * its ratio to the one-process e2e figure of the same invocation.
 */
export const scaleout: Scenario = {
  name: "scale-out",
  title: "e2e scaled out: 3-node NATS cluster (R3), 2 api + 2 router + 2 dispatcher processes + a projector",
  needs: ["ceiling.ingest"],
  skipInQuick: true,
  show: [
    ["deliveredPerS", "delivered/s"],
    ["vsE2e", "× e2e (one process)"],
    ["lost", "lost"],
    ["duplicates", "duplicates"],
  ],
  run: async ({ quick, receiver, log, earlier }) => {
    const cluster = await startNatsCluster(3);
    try {
      return await withWorkspace(async (ws) => {
        const d = durations(quick);
        const env = { NATS_URL: cluster.url, ZEN_STREAM_REPLICAS: "3" };
        // The first api creates the stream and the buckets, and migrates the database.
        const apis = [await ws.platform({ name: "scale-out-api-1", roles: "api", env })];
        apis.push(await ws.platform({ name: "scale-out-api-2", roles: "api", env }));
        for (const role of ["router", "router", "dispatcher", "dispatcher", "projector"]) await ws.platform({ name: `scale-out-${role}`, roles: role, env });

        const path = `/${ws.prefix}/scale-out`;
        const tenant = await createTenant(apis[0]!.url, "bench scale-out");
        const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}${path}`, eventTypes: ["bench.*"] });
        await receiver.call("configure", { path, secret: endpoint.secret, status: 200 });

        const loads = await Promise.all(apis.map((_, i) => ws.helper(`autocannon-${i + 1}`, "procs/autocannon.ts")));
        const results = await Promise.all(
          loads.map((load, i) =>
            load.call<LoadResult>(
              "run",
              {
                url: `${apis[i]!.url}/v1/webhooks/ingest`,
                connections: INGEST_CONNECTIONS / 2,
                headers: tenant.headers,
                body: ingestBody("bench.scaleout"),
                durationS: d.e2eS,
                collectIds: true,
              },
              (d.e2eS + 120) * 1000,
            ),
          ),
        );
        const ids = results.flatMap((r) => r.ids ?? []);
        const startedAt = Math.min(...results.map((r) => r.startedAt));
        log(`scale-out: accepted ${ids.length} through ${apis.length} apis (${results.map((r) => r.rps.toFixed(0)).join(" + ")}/s); waiting for deliveries`);
        const drained = await waitForDeliveries(
          receiver,
          { prefix: path, paths: [path], ids },
          {
            timeoutMs: (d.e2eS * 10 + 300) * 1000,
            stallMs: DRAIN_STALL_MS,
            onProgress: (remaining) => log(`scale-out: ${ids.length - remaining}/${ids.length} delivered`),
          },
        );
        const arrived = requireDrained("scale-out", drained, ids.length, { stallMs: DRAIN_STALL_MS });
        const deliveredPerS = arrived.lastAt ? arrived.distinct / ((arrived.lastAt - startedAt) / 1000) : 0;
        const e2e = earlier("e2e", "deliveredPerS");
        log(
          `scale-out: ${deliveredPerS.toFixed(0)} delivered/s, lost ${arrived.missing}, duplicates ${arrived.duplicates}${e2e ? ` (${(deliveredPerS / e2e).toFixed(2)} × e2e's ${e2e.toFixed(0)})` : ""}`,
        );
        return {
          accepted: ids.length,
          ingestRps: results.reduce((sum, r) => sum + r.rps, 0),
          deliveredPerS,
          vsE2e: e2e ? deliveredPerS / e2e : null,
          lost: arrived.missing,
          duplicates: arrived.duplicates,
          unverified: arrived.unverified,
        };
      });
    } finally {
      await cluster.cleanup();
    }
  },
};
