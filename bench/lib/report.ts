import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./env.js";
import { median, round } from "./stats.js";
import type { Figures, Scenario, Target } from "./scenario.js";

/** What one scenario (or ceiling) produced over the runs of an invocation. */
export interface Outcome {
  scenario: Scenario;
  runs: Array<Figures | { error: string }>;
}

const numeric = (v: Figures[string] | undefined): number | null => (typeof v === "number" ? v : typeof v === "boolean" ? (v ? 1 : 0) : null);

export const isError = (r: Figures | { error: string }): r is { error: string } => "error" in r;

/** Median (or max/min) of one figure over the runs that produced it. */
export function aggregate(outcome: Outcome | undefined, figure: string, agg: "median" | "max" | "min" = "median"): number | null {
  if (!outcome) return null;
  const values = outcome.runs
    .filter((r) => !isError(r))
    .map((r) => numeric((r as Figures)[figure]))
    .filter((v): v is number => v !== null && Number.isFinite(v));
  if (values.length === 0) return null;
  if (agg === "max") return Math.max(...values);
  if (agg === "min") return Math.min(...values);
  return median(values);
}

export interface ScenarioReport {
  scenario: string;
  title: string;
  runs: number;
  errors: string[];
  median: Record<string, number | string | null>;
  perRun: Array<Figures | { error: string }>;
  targets: Target[];
}

export function buildReports(outcomes: Outcome[]): ScenarioReport[] {
  const byName = new Map(outcomes.map((o) => [o.scenario.name, o]));
  const ceiling = (key: string) => {
    const dot = key.lastIndexOf(".");
    return aggregate(byName.get(key.slice(0, dot)), key.slice(dot + 1));
  };
  const earlier = (name: string, figure: string) => aggregate(byName.get(name), figure);
  return outcomes.map(({ scenario, runs }) => {
    const names = new Set(runs.flatMap((r) => Object.keys(r)).filter((k) => k !== "error"));
    const med: Record<string, number | string | null> = {};
    for (const name of names) {
      const strings = runs.map((r) => (r as Figures)[name]).filter((v) => typeof v === "string");
      med[name] = strings.length ? (strings[0] as string) : round(aggregate({ scenario, runs }, name) ?? NaN, 2);
      if (typeof med[name] === "number" && Number.isNaN(med[name])) med[name] = null;
    }
    const ok = runs.some((r) => !isError(r));
    const targets = ok && scenario.targets ? scenario.targets((f, agg) => aggregate({ scenario, runs }, f, agg), ceiling, { earlier }) : [];
    return {
      scenario: scenario.name,
      title: scenario.title,
      runs: runs.length,
      errors: runs.flatMap((r) => (isError(r) ? [r.error] : [])),
      median: med,
      perRun: runs,
      targets: targets.map((t) => ({ ...t, value: typeof t.value === "number" ? round(t.value, 3) : t.value })),
    };
  });
}

const fmt = (v: number | string | boolean | null | undefined): string => {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  return String(v);
};

/** The human table: each scenario's shown figures (median, and per run), then its targets. */
export function formatTable(reports: ScenarioReport[], outcomes: Outcome[]): string {
  const rows: string[][] = [["scenario", "figure", "median", "runs", "target", "met"]];
  for (const report of reports) {
    const scenario = outcomes.find((o) => o.scenario.name === report.scenario)!.scenario;
    if (report.errors.length === report.runs) {
      rows.push([report.scenario, "error", report.errors[0]!.split("\n")[0]!.slice(0, 90), "", "", "✗"]);
      continue;
    }
    scenario.show.forEach(([figure, label], i) => {
      const perRun = report.perRun.map((r) => (isError(r) ? "err" : fmt((r as Figures)[figure]))).join(" / ");
      rows.push([i === 0 ? report.scenario : "", label, fmt(report.median[figure]), report.runs > 1 ? perRun : "", "", ""]);
    });
    for (const t of report.targets) {
      rows.push(["", `  ${t.name}`, fmt(t.value), "", `${t.op} ${fmt(t.limit)}`, t.met === null ? "n/a" : t.met ? "yes" : "NO"]);
    }
    if (report.errors.length) rows.push(["", "errors", `${report.errors.length} of ${report.runs} runs failed`, "", "", ""]);
  }
  const widths = rows[0]!.map((_, c) => Math.min(70, Math.max(...rows.map((r) => (r[c] ?? "").length))));
  return rows
    .map((r, i) => {
      const line = r
        .map((cell, c) => (cell ?? "").slice(0, widths[c]).padEnd(widths[c]!))
        .join("  ")
        .trimEnd();
      return i === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

/**
 * Writes a run's results to `bench/results/<date>T<hhmm>.<tag>.json` (UTC): the time of day keeps a
 * second run of the same day from overwriting a file the README cites.
 */
export function writeResults(content: unknown, tag: string | null): string {
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().slice(0, 16).replace(":", "");
  const file = join(dir, tag ? `${stamp}.${tag}.json` : `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`);
  return file;
}
