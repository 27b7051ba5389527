import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import type { Tally } from "./harness.js";

/** The fault suite's bound on this machine: over it, the run fails even when every scenario passed. */
const SUITE_BOUND_MS = 10 * 60_000;

declare module "vitest" {
  export interface ProvidedContext {
    /** The file each scenario's figures are appended to (one JSON line each), for the suite's table. */
    faultsReport: string;
  }
}

/** One scenario's figures, as its tally reported them. */
export type ScenarioRow = { scenario: string } & Pick<
  Tally,
  "accepted" | "lost" | "unexpected" | "indeterminate" | "duplicates" | "unverified" | "maxWaitAfterClearMs" | "failuresAfterClear"
>;

export const appendRow = (file: string, row: ScenarioRow) => appendFileSync(file, `${JSON.stringify(row)}\n`);

/**
 * Global set-up of the fault projects: gives the scenarios a file for their figures and, when all
 * ran, prints them as one table and fails the run if the suite took longer than its bound.
 */
export function setup(project: TestProject): () => void {
  const startedAt = Date.now();
  // The process scenarios run the build, as `npm start` does.
  execFileSync("npm", ["run", "build", "--silent"], { cwd: fileURLToPath(new URL("../..", import.meta.url)), stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "zen-faults-"));
  const file = join(dir, "report.ndjson");
  appendFileSync(file, "");
  project.provide("faultsReport", file);
  return () => {
    const rows = readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ScenarioRow);
    rmSync(dir, { recursive: true, force: true });
    const elapsedMs = Date.now() - startedAt;
    console.log(renderTable(rows));
    console.log(`[faults] ${rows.length} scenarios in ${(elapsedMs / 1000).toFixed(0)} s (bound ${SUITE_BOUND_MS / 1000} s)`);
    if (elapsedMs > SUITE_BOUND_MS) {
      console.error(`[faults] the fault suite took ${(elapsedMs / 1000).toFixed(0)} s, over its bound of ${SUITE_BOUND_MS / 1000} s`);
      process.exitCode = 1;
    }
  };
}

function renderTable(rows: readonly ScenarioRow[]): string {
  const header = ["scenario", "accepted", "lost", "unexpected", "indeterminate", "duplicates", "unverified", "longest wait after fault", "refused after"];
  const body = rows.map((r) => [
    r.scenario,
    String(r.accepted),
    String(r.lost),
    String(r.unexpected),
    String(r.indeterminate),
    String(r.duplicates),
    String(r.unverified),
    `${(r.maxWaitAfterClearMs / 1000).toFixed(1)} s`,
    String(r.failuresAfterClear),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ");
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...body.map(line)].join("\n");
}
