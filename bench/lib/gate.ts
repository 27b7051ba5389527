import type { ScenarioReport } from "./report.js";

/**
 * The CI throughput gate (`--gate`): e2e delivered/s must reach this fraction of ceiling.ingest
 * measured in the same run. The one place the floor is set; `--gate-floor X` overrides it. Half the
 * quick e2e's ratio on the slowest-to-platform machine seen (0.08–0.10 on a Xeon whose raw limits
 * are twice the EPYC's, where it was 0.12): noise does not trip it, a 2× regression does.
 */
export const GATE_FLOOR = 0.05;

/** Figures that count a loss or a forged delivery: any of them above 0 in any run fails the gate. */
const LOSS_FIGURES = ["lost", "latLost", "unverified"] as const;

export interface GateVerdict {
  passed: boolean;
  lines: string[];
  json: {
    floor: number;
    passed: boolean;
    deliveredPerS: number | null;
    ceilingIngestRps: number | null;
    ratio: number | null;
    losses: Record<string, number>;
    errors: string[];
  };
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/**
 * The gate's verdict on this invocation's reports: passes when e2e delivered/s ≥ floor ×
 * ceiling.ingest (medians), nothing was lost and nothing forged in any run of any scenario, and no
 * scenario failed.
 */
export function evaluateGate(reports: ScenarioReport[], floor: number): GateVerdict {
  const byName = new Map(reports.map((r) => [r.scenario, r]));
  const ceiling = num(byName.get("ceiling.ingest")?.median.rps);
  const delivered = num(byName.get("e2e")?.median.deliveredPerS);
  const ratio = ceiling && delivered !== null ? delivered / ceiling : null;
  const throughputOk = ratio !== null && ratio >= floor;

  const losses: Record<string, number> = {};
  for (const report of reports) {
    for (const run of report.perRun) {
      if ("error" in run) continue;
      for (const figure of LOSS_FIGURES) {
        const v = num(run[figure]);
        if (v !== null) losses[`${report.scenario}.${figure}`] = Math.max(losses[`${report.scenario}.${figure}`] ?? 0, v);
      }
    }
  }
  const lossy = Object.entries(losses).filter(([, v]) => v > 0);
  const errors = reports.flatMap((r) =>
    r.errors.map((e) => {
      const first = e.split("\n")[0]!;
      return first.startsWith(`${r.scenario}`) ? first : `${r.scenario}: ${first}`;
    }),
  );
  const missing = [!byName.has("ceiling.ingest") && "ceiling.ingest", !byName.has("e2e") && "e2e"].filter(Boolean);

  const fmt = (x: number | null, digits = 0) => (x === null ? "—" : x.toFixed(digits));
  const lines = [
    `e2e delivered/s ${fmt(delivered)} (${fmt(ratio, 3)} × ceiling.ingest ${fmt(ceiling)} req/s); floor ${floor} × ceiling.ingest = ${ceiling ? fmt(floor * ceiling) : "—"}/s: ${throughputOk ? "ok" : delivered === null ? "NOT MEASURED" : "BELOW"}`,
    `lost / unverified: ${lossy.length ? lossy.map(([k, v]) => `${k} ${v}`).join(", ") : `none (${Object.keys(losses).join(", ") || "no figures"})`}: ${lossy.length ? "LOST" : "ok"}`,
    `scenario errors: ${errors.length ? errors.join(" | ") : "none"}`,
    ...(missing.length ? [`not measured: ${missing.join(", ")}`] : []),
  ];
  const passed = throughputOk && lossy.length === 0 && errors.length === 0 && missing.length === 0;
  return { passed, lines, json: { floor, passed, deliveredPerS: delivered, ceilingIngestRps: ceiling, ratio, losses, errors } };
}
