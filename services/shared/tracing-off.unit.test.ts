import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { describe, expect, it, vi } from "vitest";
import { loadConfig } from "./config.js";
import { createTracing, NOOP_TRACING } from "./tracing.js";

// Records every load of an OpenTelemetry SDK module, by whichever import of this file's module graph.
const sdk = vi.hoisted(() => ({ loaded: [] as string[] }));
vi.mock("@opentelemetry/sdk-node", async (importOriginal) => {
  sdk.loaded.push("@opentelemetry/sdk-node");
  return importOriginal();
});
vi.mock("@opentelemetry/sdk-trace-base", async (importOriginal) => {
  sdk.loaded.push("@opentelemetry/sdk-trace-base");
  return importOriginal();
});
vi.mock("@opentelemetry/core", async (importOriginal) => {
  sdk.loaded.push("@opentelemetry/core");
  return importOriginal();
});

/** The OpenTelemetry API's global slots (traces, metrics, context, propagation; logs have their own). */
const API_GLOBAL = Symbol.for("opentelemetry.js.api.1");
const LOGS_GLOBAL = Symbol.for("io.opentelemetry.js.api.logs");

describe("tracing off costs nothing beyond an `enabled` check", () => {
  it("loads no SDK module and registers no global provider, in the whole platform's module graph", async () => {
    // Every module the running process loads (api, roles, probes), imported with tracing off.
    await import("../platform.js");
    const tracing = await createTracing(loadConfig({}).tracing);
    expect(tracing).toBe(NOOP_TRACING);
    expect(tracing.startSpan("webhook.route").traceparent).toBeUndefined();
    await tracing.shutdown();

    expect(sdk.loaded).toEqual([]);
    const slots = globalThis as Record<symbol, unknown>;
    const api = slots[API_GLOBAL] as Record<string, unknown> | undefined;
    for (const kind of ["trace", "metrics", "context", "propagation", "diag"]) expect(api?.[kind], kind).toBeUndefined();
    expect(slots[LOGS_GLOBAL]).toBeUndefined();
    // What an instrumented library would get from the global API: non-recording no-ops.
    expect(trace.getTracer("x").startSpan("y").isRecording()).toBe(false);
    expect(metrics.getMeterProvider().constructor.name).toBe("NoopMeterProvider");
    expect(propagation.fields()).toEqual([]);
    expect(context.active().getValue(Symbol.for("anything"))).toBeUndefined();
  });
});
