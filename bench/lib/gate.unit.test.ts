import { describe, expect, it } from "vitest";
import { evaluateGate, GATE_FLOOR } from "./gate.js";
import type { ScenarioReport } from "./report.js";

const report = (scenario: string, figures: Record<string, number>, errors: string[] = []): ScenarioReport => ({
  scenario,
  title: scenario,
  runs: 1,
  errors,
  median: figures,
  perRun: errors.length ? errors.map((error) => ({ error })) : [figures],
  targets: [],
});
const ceiling = report("ceiling.ingest", { rps: 1_000 });

describe("the bench's CI gate", () => {
  it("passes at the floor with nothing lost, and says so", () => {
    const verdict = evaluateGate([ceiling, report("e2e", { deliveredPerS: 1_000 * GATE_FLOOR, lost: 0, latLost: 0, unverified: 0 })], GATE_FLOOR);
    expect(verdict.passed).toBe(true);
    expect(verdict.json.ratio).toBeCloseTo(GATE_FLOOR);
  });

  it("fails below the floor", () => {
    const verdict = evaluateGate([ceiling, report("e2e", { deliveredPerS: 1_000 * GATE_FLOOR - 1, lost: 0 })], GATE_FLOOR);
    expect(verdict.passed).toBe(false);
    expect(verdict.lines[0]).toContain("BELOW");
  });

  it("fails when anything was lost or unverified in any scenario, however fast", () => {
    expect(evaluateGate([ceiling, report("e2e", { deliveredPerS: 900, lost: 1 })], GATE_FLOOR).passed).toBe(false);
    expect(evaluateGate([ceiling, report("e2e", { deliveredPerS: 900, lost: 0 }), report("fanout", { lost: 0, unverified: 2 })], GATE_FLOOR).passed).toBe(false);
  });

  it("fails when a scenario failed (a stalled drain) or a figure is missing", () => {
    const stalled = evaluateGate([ceiling, report("e2e", {}, ["e2e: the drain stalled: nothing new arrived for 30 s"])], GATE_FLOOR);
    expect(stalled.passed).toBe(false);
    expect(stalled.json.errors).toEqual(["e2e: the drain stalled: nothing new arrived for 30 s"]);
    expect(evaluateGate([report("e2e", { deliveredPerS: 900, lost: 0 })], GATE_FLOOR).passed).toBe(false);
  });
});
