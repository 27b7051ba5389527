import { createEndpoint, createTenant } from "../lib/api.js";
import { durations } from "../lib/durations.js";
import { sleep } from "../lib/env.js";
import { pgClient, readModelCheckpoint, streamLastSeq } from "../lib/resources.js";
import type { RunningPlatform } from "../lib/platform.js";
import { target, withWorkspace, type Figures, type RunContext, type Scenario } from "../lib/scenario.js";
import { ratio } from "./ingest.js";

/**
 * 4. projection catch-up: a backlog of `events` in the stream while no projector runs (the
 * tenant, key and endpoint made through the api with ZEN_ROLES=api, then the delivered-message
 * events written straight to the stream), then a platform with ZEN_ROLES=projector on the empty
 * read models. events/s is measured from the first checkpoint the projector commits to the last
 * (so process start-up is not counted); wall time from spawn is reported too.
 */
async function catchUp({ receiver, log }: RunContext, events: number, label: string, timeoutMs: number): Promise<Figures> {
  return withWorkspace(async (ws) => {
    const setup = await ws.platform({ name: `${label}-setup`, roles: "api" });
    const tenant = await createTenant(setup.url, `bench ${label}`);
    const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}/${ws.prefix}/unused` });
    await setup.stop();

    const writer = await ws.helper("backlog-writer", "procs/backlog-writer.ts");
    // A delivered message leaves four events (procs/backlog-writer.ts).
    const messages = Math.ceil(events / 4);
    const w = await writer.call<{ published: number; rate: number; seconds: number }>(
      "run",
      { prefix: ws.prefix, tenantId: tenant.tenantId, endpointId: endpoint.id, messages },
      (messages / 200 + 300) * 1000,
    );
    await writer.stop();
    const stream = `${ws.prefix.toUpperCase()}_EVENTS`;
    const lastSeq = await streamLastSeq(stream);
    log(`${label}: wrote ${w.published} events in ${w.seconds.toFixed(1)} s (${w.rate.toFixed(0)}/s); stream holds ${lastSeq}; starting the projector`);

    const client = await pgClient(ws.db.url);
    try {
      const before = await readModelCheckpoint(client);
      if (before !== 0) throw new Error(`read models are not empty (checkpoint ${before})`);
      const spawnedAt = Date.now();
      // A role without http counts as started 3 s after spawn (lib/platform.ts waitAlive): poll from
      // spawn meanwhile, or a catch-up shorter than that is measured as 0 events/s.
      const start: { platform: RunningPlatform | null; error: { error: unknown } | null } = { platform: null, error: null };
      const starting = ws.platform({ name: label, roles: "projector" }).then(
        (p) => {
          start.platform = p;
        },
        (error: unknown) => {
          start.error = { error };
        },
      );
      let first: { t: number; seq: number } | null = null;
      let seq = 0;
      let lastProgress = Date.now();
      let lastLog = Date.now();
      const deadline = Date.now() + timeoutMs;
      while (seq < lastSeq) {
        const now = Date.now();
        const current = await readModelCheckpoint(client);
        if (current > seq) {
          seq = current;
          lastProgress = now;
        }
        if (!first && seq > 0) first = { t: now, seq };
        if (now - lastLog > 15_000) {
          log(`${label}: ${seq}/${lastSeq} applied`);
          lastLog = now;
        }
        if (now > deadline || now - lastProgress > 180_000) break;
        if (start.error) throw start.error.error;
        if (start.platform && start.platform.process.child.exitCode !== null) throw new Error(`projector exited\n${start.platform.output()}`);
        if (seq < lastSeq) await sleep(100);
      }
      const doneAt = Date.now();
      await starting;
      if (start.error) throw start.error.error;
      const finished = seq >= lastSeq;
      const rate = first && doneAt > first.t ? (seq - first.seq) / ((doneAt - first.t) / 1000) : 0;
      log(
        `${label}: ${finished ? "caught up" : "DID NOT FINISH"}: ${seq}/${lastSeq} in ${((doneAt - spawnedAt) / 1000).toFixed(1)} s from spawn, ${rate.toFixed(0)} events/s`,
      );
      return { events: lastSeq, applied: seq, finished, eventsPerS: rate, wallS: (doneAt - spawnedAt) / 1000, writeRate: w.rate };
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}

export const projection: Scenario = {
  name: "projection",
  title: "projector catch-up on 200,000 events, empty read model",
  needs: ["ceiling.pg"],
  show: [
    ["eventsPerS", "events/s"],
    ["wallS", "wall s"],
  ],
  run: (ctx) => catchUp(ctx, durations(ctx.quick).projectionEvents, "projection", 30 * 60_000),
  targets: (f, c) => [target("events/s ≥ 0.4 × ceiling.pg", ratio(f("eventsPerS"), c("ceiling.pg.rate")), ">=", 0.4)],
};

/** 4b. a full rebuild of 1,000,000 events: must finish (within an hour); its duration is reported. */
export const rebuild: Scenario = {
  name: "projection.rebuild",
  title: "full rebuild of 1,000,000 events (runs once)",
  needs: [],
  once: true,
  skipInQuick: true,
  show: [
    ["wallS", "duration s"],
    ["eventsPerS", "events/s"],
  ],
  run: (ctx) => catchUp(ctx, durations(ctx.quick).rebuildEvents, "rebuild", 60 * 60_000),
  targets: (f) => [target("finishes (within 1 h)", f("finished", "min"), "==", 1)],
};
