import { createEndpoint, createTenant, ingestBody, type BenchTenant } from "../lib/api.js";
import { durations } from "../lib/durations.js";
import type { RunningPlatform } from "../lib/platform.js";
import type { Helper } from "../lib/rpc.js";
import { target, waitForDeliveries, waitForQuiet, withWorkspace, type Scenario, type Workspace } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";
import { ratio } from "./ingest.js";

/**
 * 3. fan-out: one event to 10 and to 100 endpoints (each its own path and secret on the
 * receiver). deliveries/s = distinct verified deliveries / (last delivery − first request).
 */
const SIZES = [10, 100] as const;

async function fanOut(ws: Workspace, platform: RunningPlatform, receiver: Helper<{ url: string }>, size: number, deliveries: number, log: (m: string) => void) {
  const tenant: BenchTenant = await createTenant(platform.url, `bench fanout ${size}`);
  const base = `/${ws.prefix}/fan${size}/`;
  const paths: string[] = [];
  for (let i = 0; i < size; i++) {
    const path = `${base}${i}`;
    const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}${path}`, eventTypes: ["fan.*"] });
    await receiver.call("configure", { path, secret: endpoint.secret, status: 200 });
    paths.push(path);
  }
  const load = await ws.helper("autocannon", "procs/autocannon.ts");
  const options = { url: `${platform.url}/v1/webhooks/ingest`, connections: 10, headers: tenant.headers, body: ingestBody("fan.out") };
  // Warm-up: a few events through the whole path.
  const warm = await load.call<LoadResult>("run", { ...options, amount: 20 }, 120_000);
  await waitForQuiet(receiver, base, warm.ok * size, { timeoutMs: 120_000 });
  await receiver.call("reset", { prefix: base });

  const events = Math.max(1, Math.round(deliveries / size));
  const r = await load.call<LoadResult>("run", { ...options, amount: events, collectIds: true }, 600_000);
  const ids = r.ids ?? [];
  const expected = ids.length * size;
  const arrived = await waitForDeliveries(
    receiver,
    { prefix: base, paths, ids },
    { timeoutMs: 900_000, onProgress: (remaining) => log(`fanout ${size}: ${expected - remaining}/${expected} delivered`) },
  );
  const lost = arrived.missing;
  const rate = arrived.lastAt ? arrived.distinct / ((arrived.lastAt - r.startedAt) / 1000) : 0;
  log(`fanout ${size}: ${ids.length} events → ${arrived.distinct} deliveries, ${rate.toFixed(0)} deliveries/s, lost ${lost}`);
  await receiver.call("reset", { prefix: base });
  await load.stop();
  return { rate, lost, duplicates: arrived.duplicates, unverified: arrived.unverified, events: ids.length };
}

export const fanout: Scenario = {
  name: "fanout",
  title: "one event to 10 / 100 endpoints: deliveries/s",
  needs: ["ceiling.post"],
  show: [
    ["perS10", "deliv/s ×10"],
    ["perS100", "deliv/s ×100"],
    ["lost", "lost"],
  ],
  run: ({ quick, receiver, log }) =>
    withWorkspace(async (ws) => {
      const d = durations(quick);
      const platform = await ws.platform({ name: "fanout" });
      const figures: Record<string, number> = { lost: 0, duplicates: 0, unverified: 0 };
      for (const size of SIZES) {
        const r = await fanOut(ws, platform, receiver, size, d.fanoutDeliveries, log);
        figures[`perS${size}`] = r.rate;
        figures[`events${size}`] = r.events;
        figures.lost! += r.lost;
        figures.duplicates! += r.duplicates;
        figures.unverified! += r.unverified;
      }
      return figures;
    }),
  targets: (f, c) => [
    ...SIZES.map((size) => target(`×${size}: deliveries/s ≥ 0.25 × ceiling.post`, ratio(f(`perS${size}`), c("ceiling.post.rate")), ">=", 0.25)),
    target("nothing lost, every signature verified", (f("lost", "max") ?? NaN) + (f("unverified", "max") ?? NaN), "==", 0),
  ],
};
