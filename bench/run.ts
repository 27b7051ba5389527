import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BENCH_INGRESS } from "./lib/api.js";
import { ADMIN_TOKEN, ROOT, RUN_ID } from "./lib/env.js";
import { evaluateGate } from "./lib/gate.js";
import { machineFacts } from "./lib/machine.js";
import { parseOptions } from "./lib/options.js";
import { platformDefaults } from "./lib/platform.js";
import { killAll, liveProcesses } from "./lib/procs.js";
import { formatSummary, summarizeProfile } from "./lib/profile.js";
import { buildReports, formatTable, writeResults, type Outcome } from "./lib/report.js";
import { sweep, withTimeout } from "./lib/resources.js";
import { startHelper } from "./lib/rpc.js";
import type { RunContext, Scenario } from "./lib/scenario.js";
import { ceilings, scenarios } from "./scenarios/index.js";

/**
 * `npm run bench`: measures the raw limits of this machine, then the platform against them.
 * Everything it starts (platforms, receiver, load generators, ceiling processes) and creates
 * (streams, KV buckets, databases, all named after RUN_ID) is removed when it ends, however it ends.
 */
const options = parseOptions(process.argv.slice(2));
const started = Date.now();
const log = (message: string) => console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${message}`);
/** A hard bound on the whole invocation (the CI gate's is its own: it must not hold CI up). */
const GATE_HARD_LIMIT_MS = 12 * 60_000;
const HARD_LIMIT_MS =
  options.gateFloor !== null && options.quick && options.runs === 1 ? GATE_HARD_LIMIT_MS : (options.quick ? 30 : 240) * 60_000 * Math.max(1, options.runs / 3);

function select(): { ceilings: Scenario[]; scenarios: Scenario[] } {
  const known = new Set([...ceilings, ...scenarios].map((s) => s.name));
  for (const name of options.only ?? []) if (!known.has(name)) throw new Error(`unknown scenario ${name} (known: ${[...known].join(", ")})`);
  const chosen = options.only ? scenarios.filter((s) => options.only!.includes(s.name)) : scenarios.filter((s) => !(options.quick && s.skipInQuick));
  const needed = new Set(chosen.flatMap((s) => s.needs.map((n) => n.split(".").slice(0, 2).join("."))));
  const chosenCeilings = ceilings.filter((c) => (options.only ? options.only.includes(c.name) || needed.has(c.name) : true));
  return { ceilings: chosenCeilings, scenarios: chosen };
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const live = liveProcesses();
    if (live.length) log(`stopping ${live.join(", ")}`);
    await withTimeout(killAll(10_000), 60_000, "stopping processes").catch((e) => log(String(e)));
    const removed = await sweep();
    log(`cleaned up: ${removed.streams.length} streams, ${removed.databases.length} databases of run ${RUN_ID}`);
  })();
  return cleaning;
}

async function main(): Promise<number> {
  const selection = select();
  platformDefaults.cpuProf = options.cpuProf;
  if (options.cpuProf) mkdirSync(platformDefaults.profileDir, { recursive: true });
  const profilesBefore = new Set(options.cpuProf ? readdirSync(platformDefaults.profileDir) : []);
  const machine = await machineFacts();
  log(
    `run ${RUN_ID}: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, nats-server ${machine.natsServer}, postgres ${machine.postgres}, commit ${machine.gitCommit.slice(0, 12)}`,
  );
  log(`${options.runs} run(s)${options.quick ? ", quick" : ""}: ${[...selection.ceilings, ...selection.scenarios].map((s) => s.name).join(", ")}`);
  if (options.gateFloor !== null) log(`gate: e2e delivered/s must reach ${options.gateFloor} × ceiling.ingest, with nothing lost and no scenario failing`);
  log(`ingress limits: every bench tenant's ingress bucket is raised to ${BENCH_INGRESS.refillPerSecond}/s (burst ${BENCH_INGRESS.capacity}), above any offered load`);

  const receiver = await startHelper<{ url: string; port: number }>("receiver", "procs/receiver.ts");
  const outcomes = new Map<string, Outcome>();
  const ordered = [...selection.ceilings, ...selection.scenarios];
  for (const s of ordered) outcomes.set(s.name, { scenario: s, runs: [] });
  const earlier: RunContext["earlier"] = (name, figure) => {
    const report = buildReports([outcomes.get(name)].filter((o): o is Outcome => !!o))[0];
    const v = report?.median[figure];
    return typeof v === "number" ? v : null;
  };

  for (let run = 1; run <= options.runs; run++) {
    for (const s of ordered) {
      if (s.once && run > 1) continue;
      const ctx: RunContext = { quick: options.quick, run, receiver, earlier, log, gateFloor: options.gateFloor };
      log(`run ${run}/${options.runs}: ${s.name} — ${s.title}`);
      const t0 = Date.now();
      try {
        const figures = await s.run(ctx);
        outcomes.get(s.name)!.runs.push(figures);
        log(
          `run ${run}/${options.runs}: ${s.name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify(figures, (_k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v))}`,
        );
      } catch (error) {
        const message = (error as Error)?.message ?? String(error);
        outcomes.get(s.name)!.runs.push({ error: message });
        log(`run ${run}/${options.runs}: ${s.name} FAILED after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${message}`);
      }
    }
  }
  await receiver.stop();

  const all = [...outcomes.values()];
  const reports = buildReports(all);
  console.log(
    `\nZen Webhooks bench, ${new Date().toISOString()} — ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, nats-server ${machine.natsServer}, postgres ${machine.postgres}, commit ${machine.gitCommit.slice(0, 12)}`,
  );
  console.log(
    `${options.runs} run(s)${options.quick ? " (--quick: short durations, not comparable with the targets)" : ""}; medians, per-run values in the runs column\n`,
  );
  console.log(formatTable(reports, all));
  console.log("");
  for (const report of reports)
    console.log(JSON.stringify({ scenario: report.scenario, runs: report.runs, median: report.median, targets: report.targets, errors: report.errors }));

  const profiles = options.cpuProf ? readdirSync(platformDefaults.profileDir).filter((f) => f.endsWith(".cpuprofile") && !profilesBefore.has(f)) : [];
  const profileSummaries = profiles.map((f) => summarizeProfile(join(platformDefaults.profileDir, f)));
  for (const summary of profileSummaries) console.log(`\n${formatSummary(summary)}`);

  const gate = options.gateFloor !== null ? evaluateGate(reports, options.gateFloor) : null;
  if (gate) {
    console.log(`\nGATE ${gate.passed ? "PASSED" : "FAILED"} — needs e2e delivered/s ≥ ${options.gateFloor} × ceiling.ingest, nothing lost, no scenario failed`);
    for (const line of gate.lines) console.log(`  ${line}`);
    console.log(JSON.stringify({ gate: gate.json }));
  }

  const tag = gate ? "gate" : options.quick ? "quick" : options.only ? `only-${options.only.join("+")}` : options.runs !== 3 ? `runs${options.runs}` : null;
  const file = writeResults(
    {
      date: new Date().toISOString(),
      runId: RUN_ID,
      machine,
      options: { ...options, adminToken: ADMIN_TOKEN.replace(/.(?=.{4})/g, "*") },
      durationS: Math.round((Date.now() - started) / 1000),
      notes: [`ingress limits: bench tenants raised to ${BENCH_INGRESS.refillPerSecond}/s (burst ${BENCH_INGRESS.capacity}) through PUT /v1/tenants/{id}/limits`],
      scenarios: reports,
      ...(gate ? { gate: gate.json } : {}),
      profiles: profileSummaries.map((s) => ({ ...s, file: s.file.replace(`${ROOT}`, "") })),
    },
    tag,
  );
  console.log(`\nresults: ${file.replace(`${ROOT}`, "")}`);
  if (gate) return gate.passed ? 0 : 1;
  return reports.some((r) => r.errors.length > 0) ? 1 : 0;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}
const hardLimit = setTimeout(() => {
  log(`the bench exceeded its hard limit of ${HARD_LIMIT_MS / 60_000} min: cleaning up`);
  void cleanup().finally(() => process.exit(1));
}, HARD_LIMIT_MS);
hardLimit.unref();

main()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (error: unknown) => {
    log(`failed: ${(error as Error)?.stack ?? String(error)}`);
    await cleanup();
    process.exit(1);
  });
