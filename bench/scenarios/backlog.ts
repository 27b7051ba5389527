import { createEndpoint, createTenant, ingestBody } from "../lib/api.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { wallNow } from "../lib/env.js";
import { sampleRss } from "../lib/platform.js";
import { consumerInfo, waitUntilScheduled } from "../lib/resources.js";
import { target, waitForDeliveries, withWorkspace, type Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";
import { ratio } from "./ingest.js";

/**
 * 5. backlog and memory: `backlogDeliveries` deliveries to one endpoint whose receiver answers 503,
 * then the receiver comes back. The endpoint's retry policy retries every 2–5 s (50 attempts, 2 h),
 * so when the receiver returns every pending retry is due within seconds and the drain is paced by
 * the dispatcher, not by the schedule. The platform's RSS (VmRSS) is sampled every second.
 *
 * What "queued" means with this dispatcher: each delivery is a `delivery.scheduled` or
 * `delivery.retry_scheduled` event in the stream; the dispatcher holds at most 4,096 in hand (its
 * lanes); one not yet due, or behind the open circuit, is nak'd with a delay and keeps an unacked
 * slot of the dispatcher's consumer (max_ack_pending 100,000) until redelivered. The
 * consumer's ack-pending and pending counts at the end of the fill are reported as `ackPending` and
 * `numPending`.
 */
const RETRY = { maxAttempts: 50, initialDelayMs: 2_000, maxDelayMs: 5_000, factor: 1.5, maxDurationMs: 2 * 3600_000 };

export const backlog: Scenario = {
  name: "backlog",
  title: "deliveries queued behind a 503 receiver, then drained; RSS",
  needs: [],
  show: [
    ["maxRssMB", "max RSS MB"],
    ["drainPerS", "drain/s"],
    ["firstDeliveryS", "1st deliv. s"],
    ["activePerS", "drain/s from 1st"],
    ["lost", "lost"],
  ],
  run: ({ quick, receiver, log }) =>
    withWorkspace(async (ws) => {
      const d = durations(quick);
      const n = d.backlogDeliveries;
      const path = `/${ws.prefix}/backlog`;
      const upper = ws.prefix.toUpperCase();
      const stream = `${upper}_EVENTS`;
      const platform = await ws.platform({ name: "backlog" });
      const rss = sampleRss(platform.pid);
      try {
        const tenant = await createTenant(platform.url, "bench backlog");
        const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}${path}`, retryPolicy: RETRY });
        await receiver.call("configure", { path, secret: endpoint.secret, status: 503 });

        // Fill: n events accepted while the receiver is down.
        const load = await ws.helper("autocannon", "procs/autocannon.ts");
        const fillStart = Date.now();
        const r = await load.call<LoadResult>(
          "run",
          {
            url: `${platform.url}/v1/webhooks/ingest`,
            connections: INGEST_CONNECTIONS,
            amount: n,
            headers: tenant.headers,
            body: ingestBody("bench.backlog"),
            collectIds: true,
          },
          (n / 20 + 300) * 1000,
        );
        const ids = r.ids ?? [];
        log(`backlog: ${ids.length} accepted in ${r.durationS.toFixed(1)} s; waiting until every delivery is scheduled`);
        await waitUntilScheduled(ws.prefix);
        const fillS = (Date.now() - fillStart) / 1000;
        const dispatcher = await consumerInfo(stream, `${upper}_DISPATCHER`);
        const down = await receiver.call<{ refused: number }>("stats", { prefix: path });
        const fillMaxRss = rss.max();
        log(
          `backlog: ${ids.length} deliveries queued after ${fillS.toFixed(0)} s; dispatcher consumer ack-pending ${dispatcher?.num_ack_pending}, pending ${dispatcher?.num_pending}, redelivered ${dispatcher?.num_redelivered}; ${down.refused} attempts answered 503; RSS max ${(fillMaxRss / 2 ** 20).toFixed(0)} MB`,
        );

        // Drain: the receiver is back.
        const upAt = wallNow();
        const upAtMs = Date.now();
        await receiver.call("setStatus", { prefix: path, status: 200 });
        const arrived = await waitForDeliveries(
          receiver,
          { prefix: path, paths: [path], ids },
          {
            timeoutMs: Math.max(15 * 60_000, (n / 50) * 1000),
            stallMs: 180_000,
            onProgress: (remaining) =>
              log(`backlog: ${ids.length - remaining}/${ids.length} drained, RSS ${(rss.maxSince(Date.now() - 10_000) / 2 ** 20).toFixed(0)} MB`),
          },
        );
        const lost = arrived.missing;
        const drainS = arrived.lastAt ? (arrived.lastAt - upAt) / 1000 : null;
        const drainPerS = drainS ? arrived.distinct / drainS : 0;
        // The dispatcher may wait before its first attempt after the outage (a retry not yet due,
        // an open circuit): the rate from the first delivery on is the dispatcher's own pace.
        const firstDeliveryS = arrived.firstAt ? (arrived.firstAt - upAt) / 1000 : null;
        const activePerS = arrived.firstAt && arrived.lastAt && arrived.lastAt > arrived.firstAt ? arrived.distinct / ((arrived.lastAt - arrived.firstAt) / 1000) : 0;
        const maxRss = rss.max();
        log(
          `backlog: drained ${arrived.distinct}/${ids.length} in ${drainS?.toFixed(1)} s (${drainPerS.toFixed(0)}/s; first delivery ${firstDeliveryS?.toFixed(1)} s after the receiver came back, ${activePerS.toFixed(0)}/s from then), lost ${lost}; max RSS ${(maxRss / 2 ** 20).toFixed(0)} MB (fill ${(fillMaxRss / 2 ** 20).toFixed(0)}, drain ${(rss.maxSince(upAtMs) / 2 ** 20).toFixed(0)})`,
        );
        return {
          deliveries: ids.length,
          fillS,
          attemptsWhileDown: down.refused,
          ackPending: dispatcher?.num_ack_pending ?? null,
          numPending: dispatcher?.num_pending ?? null,
          redelivered: dispatcher?.num_redelivered ?? null,
          drained: arrived.complete,
          drainS,
          drainPerS,
          firstDeliveryS,
          activePerS,
          lost,
          duplicates: arrived.duplicates,
          unverified: arrived.unverified,
          maxRssMB: maxRss / 2 ** 20,
          fillMaxRssMB: fillMaxRss / 2 ** 20,
          drainMaxRssMB: rss.maxSince(upAtMs) / 2 ** 20,
        };
      } finally {
        rss.stop();
      }
    }),
  targets: (f, _c, { earlier }) => [
    target("RSS < 400 MB throughout (max over runs)", f("maxRssMB", "max"), "<=", 400),
    target("backlog drains completely, nothing lost", f("lost", "max"), "==", 0),
    target("drain rate (from receiver up) ≥ 0.8 × e2e delivered/s", ratio(f("drainPerS"), earlier("e2e", "deliveredPerS")), ">=", 0.8),
    target("drain rate (from 1st delivery) ≥ 0.8 × e2e delivered/s", ratio(f("activePerS"), earlier("e2e", "deliveredPerS")), ">=", 0.8),
  ],
};
