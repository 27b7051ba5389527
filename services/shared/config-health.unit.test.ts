import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("configuration: endpoint health", () => {
  it("disables endpoints after 5 days of continuous failure by default", () => {
    expect(loadConfig({}).endpointDisableAfterMs).toBe(5 * 24 * 3_600_000);
  });

  it("reads ZEN_ENDPOINT_DISABLE_AFTER_MS, refusing nonsense", () => {
    expect(loadConfig({ ZEN_ENDPOINT_DISABLE_AFTER_MS: "3600000" }).endpointDisableAfterMs).toBe(3_600_000);
    expect(() => loadConfig({ ZEN_ENDPOINT_DISABLE_AFTER_MS: "soon" })).toThrow(ConfigError);
    expect(() => loadConfig({ ZEN_ENDPOINT_DISABLE_AFTER_MS: "10" })).toThrow(/ZEN_ENDPOINT_DISABLE_AFTER_MS/);
  });

  it("takes the circuit breaker's thresholds, defaulting to 5 failures, 60 s open and 3 probes", () => {
    expect(loadConfig({}).circuit).toEqual({ failureThreshold: 5, halfOpenAfterMs: 60_000, maxProbes: 3 });
    const config = loadConfig({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "50", ZEN_CIRCUIT_OPEN_MS: "1000", ZEN_CIRCUIT_MAX_PROBES: "1" });
    expect(config.circuit).toEqual({ failureThreshold: 50, halfOpenAfterMs: 1_000, maxProbes: 1 });
    expect(() => loadConfig({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "0" })).toThrow(/ZEN_CIRCUIT_FAILURE_THRESHOLD/);
  });
});
