import { nextSuffix, RUN_ID } from "../lib/env.js";
import { createDatabase } from "../lib/resources.js";
import { startHelper, type Helper } from "../lib/rpc.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { ingestBody } from "../lib/api.js";
import type { Figures, RunContext, Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";

/**
 * The raw limits, each measured in its own child process with its own stream or database, removed
 * afterwards. Scenario targets are ratios to these, measured in the same run on the same machine.
 */
const ceilingPrefix = () => `ceil${RUN_ID}${nextSuffix()}`;

async function using<T>(helpers: Array<Promise<Helper<any>>>, fn: (hs: Helper<any>[]) => Promise<T>): Promise<T> {
  const started = await Promise.allSettled(helpers);
  const ok = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    return await fn(ok);
  } finally {
    await Promise.all(ok.map((h) => h.stop()));
  }
}

export const ceilingIngest: Scenario = {
  name: "ceiling.ingest",
  title: "bare fastify + 1 JetStream publish, autocannon 50 conns",
  needs: [],
  show: [
    ["rps", "req/s"],
    ["p99", "p99 ms"],
  ],
  async run({ quick }: RunContext): Promise<Figures> {
    const d = durations(quick);
    const env = { BENCH_CEILING_PREFIX: ceilingPrefix() };
    return using(
      [startHelper<{ url: string }>("ceiling-ingest-server", "ceilings/ingest-server.ts", { env }), startHelper("autocannon", "procs/autocannon.ts")],
      async ([server, load]) => {
        const options = {
          url: `${server!.info.url}/ingest`,
          connections: INGEST_CONNECTIONS,
          headers: { "content-type": "application/json" },
          body: ingestBody("ceiling.ingest"),
        };
        await load!.call("run", { ...options, durationS: d.warmupS }, (d.warmupS + 60) * 1000);
        const r = await load!.call<LoadResult>("run", { ...options, durationS: d.ingestS }, (d.ingestS + 60) * 1000);
        return { rps: r.rps, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
      },
    );
  },
};

export const ceilingPublish: Scenario = {
  name: "ceiling.publish",
  title: "pipelined JetStream publishes of 1 KiB, one process",
  needs: [],
  show: [["rate", "msg/s"]],
  async run({ quick }: RunContext): Promise<Figures> {
    const d = durations(quick);
    const env = { BENCH_CEILING_PREFIX: ceilingPrefix() };
    return using([startHelper("ceiling-publish", "ceilings/publish.ts", { env })], async ([pub]) => {
      await pub!.call("run", { durationS: 1 }, 60_000);
      const r = await pub!.call<{ rate: number; failed: number; window: number }>("run", { durationS: d.publishS }, (d.publishS + 60) * 1000);
      return { rate: r.rate, failed: r.failed, window: r.window };
    });
  },
};

export const ceilingPost: Scenario = {
  name: "ceiling.post",
  title: "undici signed 1 KiB POSTs to the receiver, 64 in flight",
  needs: [],
  show: [
    ["rate", "req/s"],
    ["p99", "p99 ms"],
  ],
  async run({ quick, receiver }: RunContext): Promise<Figures> {
    const d = durations(quick);
    const path = `/ceiling/post`;
    const secret = `whsec_${Buffer.from("bench-ceiling-post-secret-0123456789").toString("base64")}`;
    await receiver.call("configure", { path, secret, status: 200 });
    return using([startHelper("ceiling-post", "ceilings/post.ts")], async ([post]) => {
      const args = { origin: receiver.info.url, path, secret };
      await post!.call("run", { ...args, durationS: 1 }, 60_000);
      await receiver.call("reset", { prefix: path });
      const r = await post!.call<{ rate: number; failed: number; latency: { p99: number } }>("run", { ...args, durationS: d.postS }, (d.postS + 60) * 1000);
      const seen = await receiver.call<{ unverified: number }>("stats", { prefix: path });
      await receiver.call("reset", { prefix: path });
      return { rate: r.rate, p99: r.latency.p99, failed: r.failed, unverified: seen.unverified };
    });
  },
};

export const ceilingPg: Scenario = {
  name: "ceiling.pg",
  title: "batched inserts of 1 KiB jsonb rows (500/tx, one connection)",
  needs: [],
  show: [["rate", "rows/s"]],
  async run({ quick }: RunContext): Promise<Figures> {
    const d = durations(quick);
    const db = await createDatabase();
    try {
      return await using([startHelper("ceiling-pg", "ceilings/pg.ts")], async ([pg]) => {
        await pg!.call("run", { databaseUrl: db.url, durationS: 1 }, 60_000);
        const r = await pg!.call<{ rate: number; batch: number }>("run", { databaseUrl: db.url, durationS: d.pgS }, (d.pgS + 60) * 1000);
        return { rate: r.rate, batch: r.batch };
      });
    } finally {
      await db.drop();
    }
  },
};

export const ceilings = [ceilingIngest, ceilingPublish, ceilingPost, ceilingPg];
