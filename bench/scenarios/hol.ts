import { Pool } from "undici";
import { createEndpoint, createTenant, ingestBody, type BenchTenant } from "../lib/api.js";
import { durations } from "../lib/durations.js";
import { consumerInfo, waitUntilScheduled } from "../lib/resources.js";
import type { Helper } from "../lib/rpc.js";
import { target, waitForDeliveries, withWorkspace, type RunContext, type Scenario, type Workspace } from "../lib/scenario.js";
import { ratio } from "./ingest.js";

/**
 * 6. head-of-line isolation: a healthy endpoint's latency at a steady rate, first alone, then with
 * a dead endpoint of the same tenant holding a backlog of 10,000 deliveries — once failing (500)
 * and once hanging (never answering, so every attempt runs into the 15 s timeout) — and then with
 * another tenant's 8 hanging endpoints holding 10,000 between them (their 8 × 32 slots would take
 * every one of the dispatcher's 256 without a tenant's share), each in a platform of its own.
 * Target: the healthy endpoint's p99 with the dead ones present is within 2× of its p99 alone.
 *
 * The circuit's open period is 10 s here (60 s by default), and the dead phase lasts 60 s, so the
 * window holds several open → half-open → probe → open cycles with the backlog coming back each
 * time — the steady state of a long outage, not a quiet stretch while the circuit is open. The
 * dead endpoint's probes and the dispatcher's redeliveries during the window are reported, so a
 * reader sees it was active.
 */
const RATE = 50;
const BACKLOG = 10_000;
const CIRCUIT_OPEN_MS = 10_000;
const DEAD_PHASE_S = 60;
const MODES = ["failing", "hanging", "tenant"] as const;
type Mode = (typeof MODES)[number];
/** The modes to run: `BENCH_HOL_MODES` (e.g. `tenant`, or `failing,hanging`), else all three. */
function holModes(): ReadonlyArray<Mode> {
  const asked = process.env.BENCH_HOL_MODES?.split(",").map((mode) => mode.trim());
  if (!asked) return MODES;
  const unknown = asked.filter((mode) => !(MODES as readonly string[]).includes(mode));
  if (unknown.length > 0) throw new Error(`BENCH_HOL_MODES: unknown mode(s) ${unknown.join(", ")}; known: ${MODES.join(", ")}`);
  return MODES.filter((mode) => asked.includes(mode));
}

/** The other tenant's hanging endpoints in the `tenant` mode. */
const NOISY_ENDPOINTS = 8;

type Latency = { p50: number; p99: number; count: number };

async function measure(ws: Workspace, receiver: Helper, tenant: BenchTenant, base: string, path: string, seconds: number): Promise<Latency & { lost: number }> {
  const publisher = await ws.helper(`rate-publisher-${path.split("/").at(-1)}`, "procs/rate-publisher.ts");
  const url = new URL(`${base}/v1/webhooks/ingest`);
  const sent = await publisher.call<{ ids: string[]; skipped: number; failed: number }>(
    "run",
    { origin: url.origin, path: url.pathname, headers: tenant.headers, eventType: `healthy.${path.split("/").at(-1)}`, rate: RATE, durationS: seconds },
    (seconds + 120) * 1000,
  );
  const arrived = await waitForDeliveries(receiver, { prefix: path, paths: [path], ids: sent.ids }, { timeoutMs: 120_000 });
  const latency = await receiver.call<Latency>("latency", { prefix: path });
  // Events the publisher could not send or that were refused count as lost, like those never delivered.
  return { ...latency, lost: arrived.missing + sent.skipped + sent.failed };
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

/** One platform: warm up, measure the healthy endpoint alone, add the dead one and its backlog, measure again. */
async function runMode(mode: Mode, { quick, receiver, log }: Pick<RunContext, "quick" | "receiver" | "log">) {
  return withWorkspace(async (ws) => {
    const seconds = durations(quick).latencyS;
    const deadSeconds = quick ? seconds : DEAD_PHASE_S;
    const platform = await ws.platform({ name: `hol-${mode}`, env: { ZEN_CIRCUIT_OPEN_MS: String(CIRCUIT_OPEN_MS) } });
    const tenant = await createTenant(platform.url, `bench hol ${mode}`);
    const healthy = async (phase: string, phaseSeconds: number) => {
      const path = `/${ws.prefix}/healthy-${phase}`;
      const endpoint = await createEndpoint(tenant, { url: `${receiver.info.url}${path}`, eventTypes: [`healthy.healthy-${phase}`] });
      await receiver.call("configure", { path, secret: endpoint.secret, status: 200 });
      return measure(ws, receiver, tenant, platform.url, path, phaseSeconds);
    };
    // A first, unmeasured phase warms the platform up, so "alone" is not a cold start.
    await healthy("warmup", Math.min(5, seconds));
    const alone = await healthy("alone", seconds);

    const deadPath = `/${ws.prefix}/dead`;
    // In the tenant mode the dead endpoints are another tenant's, and there are several.
    const deadTenant = mode === "tenant" ? await createTenant(platform.url, "bench hol noisy tenant") : tenant;
    const deadEndpoints = mode === "tenant" ? NOISY_ENDPOINTS : 1;
    for (let n = 0; n < deadEndpoints; n++) {
      const path = `${deadPath}/${n}`;
      const dead = await createEndpoint(deadTenant, { url: `${receiver.info.url}${path}`, eventTypes: ["dead.*"] });
      await receiver.call("configure", { path, secret: dead.secret, status: mode === "failing" ? 500 : 0 });
    }
    const deliveries = quick ? 2_000 : BACKLOG;
    const accepted = deadEndpoints * (await backlog(platform.url, deadTenant, "dead.event", Math.ceil(deliveries / deadEndpoints)));
    // The backlog is deliveries scheduled for the dead endpoint, not events still being routed.
    await waitUntilScheduled(ws.prefix);
    const durable = `${ws.prefix.toUpperCase()}_DISPATCHER`;
    const deadRequests = async () => (await receiver.call<{ requests: number }>("stats", { prefix: deadPath })).requests;
    const before = { requests: await deadRequests(), redelivered: (await consumerInfo(`${ws.prefix.toUpperCase()}_EVENTS`, durable))?.num_redelivered ?? 0 };
    const withDead = await healthy(mode, deadSeconds);
    const after = { requests: await deadRequests(), redelivered: (await consumerInfo(`${ws.prefix.toUpperCase()}_EVENTS`, durable))?.num_redelivered ?? 0 };
    const deadAttempts = after.requests - before.requests;
    const redeliveries = after.redelivered - before.redelivered;
    log(
      `hol ${mode}: ${accepted} queued; healthy alone p99 ${alone.p99.toFixed(1)} ms, with the dead endpoint p99 ${withDead.p99.toFixed(1)} ms (p50 ${withDead.p50.toFixed(1)}) over ${withDead.count}; meanwhile ${deadAttempts} attempts reached the dead endpoint and the dispatcher had ${redeliveries} redeliveries`,
    );
    return { alone, withDead, deadAttempts, redeliveries };
  });
}

export const hol: Scenario = {
  name: "hol",
  title: "head-of-line isolation (dead endpoints with 10,000 pending: the tenant's own, another tenant's)",
  needs: [],
  show: [
    ["failingAloneP99", "alone p99 ms (f)"],
    ["failingP99", "w/ failing p99"],
    ["hangingAloneP99", "alone p99 ms (h)"],
    ["hangingP99", "w/ hanging p99"],
    ["tenantAloneP99", "alone p99 ms (t)"],
    ["tenantP99", "w/ tenant's 8 hanging p99"],
    ["lost", "lost"],
  ],
  run: async ({ quick, receiver, log }) => {
    const figures: Record<string, number> = {};
    let lost = 0;
    for (const mode of holModes()) {
      const { alone, withDead, deadAttempts, redeliveries } = await runMode(mode, { quick, receiver, log });
      Object.assign(figures, {
        [`${mode}AloneP50`]: alone.p50,
        [`${mode}AloneP99`]: alone.p99,
        [`${mode}P50`]: withDead.p50,
        [`${mode}P99`]: withDead.p99,
        [`${mode}DeadAttempts`]: deadAttempts,
        [`${mode}Redeliveries`]: redeliveries,
      });
      lost += alone.lost + withDead.lost;
    }
    return {
      ...figures,
      lost,
      rate: RATE,
      backlog: quick ? 2_000 : BACKLOG,
      circuitOpenMs: CIRCUIT_OPEN_MS,
      deadPhaseS: quick ? durations(quick).latencyS : DEAD_PHASE_S,
    };
  },
  targets: (f) => [
    target("healthy p99 with a failing endpoint ≤ 2× alone", ratio(f("failingP99"), f("failingAloneP99")), "<=", 2),
    target("healthy p99 with a hanging endpoint ≤ 2× alone", ratio(f("hangingP99"), f("hangingAloneP99")), "<=", 2),
    target("healthy p99 with another tenant's 8 hanging endpoints ≤ 2× alone", ratio(f("tenantP99"), f("tenantAloneP99")), "<=", 2),
    target("the failing endpoint was probed during its phase", f("failingDeadAttempts", "min"), ">=", 1),
    target("nothing lost", f("lost", "max"), "==", 0),
  ],
};
