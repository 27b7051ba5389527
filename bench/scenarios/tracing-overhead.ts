import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { NOOP_TRACING, type Tracing } from "../../services/shared/tracing.js";
import { createTenant, ingestBody } from "../lib/api.js";
import { durations, INGEST_CONNECTIONS } from "../lib/durations.js";
import { median, round } from "../lib/stats.js";
import { target, withWorkspace, type Figures, type RunContext, type Scenario } from "../lib/scenario.js";
import type { LoadResult } from "../procs/autocannon.js";

/**
 * Issue 6: "tracing off costs under 2% of ingest throughput".
 *
 * A build of the platform without any tracing call does not exist to compare with, so this
 * scenario measures what can be measured, on the ingest scenario's setup (`ZEN_ROLES=api`,
 * autocannon 50 connections, 1 KiB events):
 *
 * - **off vs on**: two api processes on the same stream and database, one with tracing off (the
 *   default), one with `ZEN_TRACING=true` exporting OTLP/HTTP to a sink in this process; loaded in
 *   turn (off, on, off, on, …) so drift hits both alike. `on_cost` = 1 − on/off (medians).
 * - **A/A noise**: the spread of the off rounds among themselves: the smallest difference a
 *   throughput comparison on this machine can resolve.
 * - **the off path itself**: with tracing off, an ingest (or inbound) request calls one empty
 *   `enter` in its handler (the span hooks are not even registered); the router and dispatcher a check and
 *   a no-op `startSpan`. That work is timed here per request (`off_path_ns`, the dispatcher's,
 *   the larger) and set against the measured time per request: `off_cost_bound` =
 *   off_path_ns × off_rps / 1e9, an upper bound on the throughput tracing-off can cost (exact if the
 *   api is CPU-bound, smaller otherwise). The target is on that bound.
 */
export const tracingOverhead: Scenario = {
  name: "tracing-overhead",
  title: "ingest with tracing off vs on (api role, 50 conns, 1 KiB), and the off path's cost",
  needs: [],
  show: [
    ["off_rps", "off req/s"],
    ["on_rps", "on req/s"],
    ["on_cost", "on cost"],
    ["aa_noise", "A/A noise"],
    ["off_path_ns", "off path ns/req"],
    ["off_cost_bound", "off cost bound"],
  ],
  run: (ctx) => runTracingOverhead(ctx),
  targets: (f) => [
    target("tracing off costs < 2% of ingest throughput (bound from the off path)", f("off_cost_bound"), "<=", 0.02),
    target("tracing on exported spans", f("exported_batches", "min"), ">=", 1),
    target("no errors (non-2xx + errors)", f("errors", "max"), "==", 0),
  ],
};

async function runTracingOverhead({ quick, log }: Pick<RunContext, "quick" | "log">): Promise<Figures> {
  const sink = await startOtlpSink();
  try {
    return await withWorkspace(async (ws) => {
      const d = durations(quick);
      const rounds = quick ? 2 : 3;
      const off = await ws.platform({ name: "tracing-off", roles: "api" });
      const on = await ws.platform({
        name: "tracing-on",
        roles: "api",
        env: { ZEN_TRACING: "true", OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: "zen-bench", OTEL_BSP_MAX_QUEUE_SIZE: "8192" },
      });
      const tenant = await createTenant(off.url, "bench tracing");
      const load = await ws.helper("autocannon", "procs/autocannon.ts");
      const body = ingestBody("bench.tracing");
      const hit = (url: string, durationS: number) =>
        load.call<LoadResult>(
          "run",
          { url: `${url}/v1/webhooks/ingest`, connections: INGEST_CONNECTIONS, headers: tenant.headers, body, durationS },
          (durationS + 60) * 1000,
        );
      // Both warm (JIT, pools, the registry view of the "on" process has the tenant's key).
      await hit(off.url, d.warmupS);
      await hit(on.url, d.warmupS);
      const offRuns: LoadResult[] = [];
      const onRuns: LoadResult[] = [];
      for (let round = 1; round <= rounds; round++) {
        // Alternate which goes first, so a trend over the run does not favour either.
        const order = round % 2 === 1 ? (["off", "on"] as const) : (["on", "off"] as const);
        for (const which of order) {
          const r = await hit(which === "off" ? off.url : on.url, d.ingestS);
          (which === "off" ? offRuns : onRuns).push(r);
          log(`tracing-overhead round ${round} ${which}: ${r.rps.toFixed(0)} req/s, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}`);
        }
      }
      const offRps = median(offRuns.map((r) => r.rps));
      const onRps = median(onRuns.map((r) => r.rps));
      const offRates = offRuns.map((r) => r.rps);
      const offPathNs = measureOffPathNs();
      const figures = {
        off_rps: offRps,
        on_rps: onRps,
        on_cost: round(1 - onRps / offRps, 4),
        aa_noise: round((Math.max(...offRates) - Math.min(...offRates)) / offRps, 4),
        off_p99: median(offRuns.map((r) => r.latency.p99)),
        on_p99: median(onRuns.map((r) => r.latency.p99)),
        off_path_ns: round(offPathNs, 2),
        off_cost_bound: (offPathNs * offRps) / 1e9,
        exported_batches: sink.batches(),
        exported_kib: round(sink.bytes() / 1024, 0),
        errors: [...offRuns, ...onRuns].reduce((n, r) => n + r.non2xx + r.errors, 0),
      };
      log(
        `tracing-overhead: off ${offRps.toFixed(0)} req/s, on ${onRps.toFixed(0)} req/s (on costs ${(figures.on_cost * 100).toFixed(1)}%, A/A noise ${(figures.aa_noise * 100).toFixed(1)}%); off path ${figures.off_path_ns} ns/req → bound ${(figures.off_cost_bound * 100).toFixed(4)}%; ${figures.exported_batches} OTLP batches exported`,
      );
      return figures;
    });
  } finally {
    await sink.close();
  }
}

/**
 * Nanoseconds per message of what a role does with tracing off, the dispatcher's path being the
 * longest: an `enabled` check, a no-op `startSpan` (attributes not even built), reading its
 * `traceparent`, and ending it. Timed over enough iterations that the clock's resolution vanishes;
 * the result is kept live so the JIT cannot drop the loop.
 */
export function measureOffPathNs(tracing: Tracing = NOOP_TRACING, iterations = 20_000_000): number {
  const stored: { traceparent?: string } = {};
  let live = 0;
  const once = () => {
    if (tracing.enabled) stored.traceparent = "unreachable";
    const span = tracing.startSpan("webhook.delivery_attempt", { kind: "client", parent: stored.traceparent, attributes: tracing.enabled ? { n: live } : undefined });
    if (span.traceparent) live++;
    if (tracing.enabled) live++;
    span.end();
    live++;
  };
  for (let i = 0; i < 1_000_000; i++) once(); // warm-up
  const samples: number[] = [];
  for (let s = 0; s < 5; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations / 5; i++) once();
    samples.push(Number(process.hrtime.bigint() - t0) / (iterations / 5));
  }
  if (live === 0) throw new Error("unreachable: keeps the loop live");
  return median(samples);
}

/** An OTLP/HTTP endpoint that accepts and discards every export, counting batches and bytes. */
async function startOtlpSink(): Promise<{ url: string; batches(): number; bytes(): number; close(): Promise<void> }> {
  let batches = 0;
  let bytes = 0;
  const server: Server = createServer((req, res) => {
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      if (req.url === "/v1/traces") batches++;
      res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    batches: () => batches,
    bytes: () => bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Standalone: `npm run build && npx tsx bench/scenarios/tracing-overhead.ts [--quick]` runs this
 * scenario alone, cleaning up what it started (as `bench/run.ts` does) however it ends.
 */
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void standalone();

async function standalone(): Promise<never> {
  const { killAll } = await import("../lib/procs.js");
  const { sweep } = await import("../lib/resources.js");
  const quick = process.argv.includes("--quick");
  const started = Date.now();
  const log = (message: string) => console.error(`[tracing-overhead ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= killAll(10_000)
      .then(() => sweep())
      .then(() => undefined));
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  let code = 0;
  try {
    const figures = await runTracingOverhead({ quick, log });
    const f = (name: string) => (typeof figures[name] === "number" ? (figures[name] as number) : null);
    console.log(JSON.stringify({ scenario: tracingOverhead.name, quick, figures, targets: tracingOverhead.targets!(f, () => null, { earlier: () => null }) }, null, 2));
  } catch (error) {
    console.error(error);
    code = 1;
  } finally {
    await cleanup();
  }
  process.exit(code);
}
