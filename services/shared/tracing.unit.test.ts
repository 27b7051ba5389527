import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { metrics } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { loadConfig } from "./config.js";
import { createTracing, NOOP_TRACING, withSpan } from "./tracing.js";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe("tracing configuration", () => {
  const enabled = (env: Record<string, string>) => loadConfig(env).tracing.enabled;

  it("is off by default", () => {
    expect(loadConfig({}).tracing).toEqual({ enabled: false, serviceName: "zen-webhooks" });
  });

  it("turns on with ZEN_TRACING=true, an OTEL_TRACES_EXPORTER or an OTLP endpoint", () => {
    expect(enabled({ ZEN_TRACING: "true" })).toBe(true);
    expect(enabled({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(enabled({ OTEL_TRACES_EXPORTER: "console" })).toBe(true);
    expect(enabled({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(enabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toBe(true);
  });

  it("stays off when told so, whatever else is set", () => {
    expect(enabled({ ZEN_TRACING: "false", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(false);
    expect(enabled({ ZEN_TRACING: "true", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(enabled({ ZEN_TRACING: "true", OTEL_TRACES_EXPORTER: "none" })).toBe(false);
    expect(enabled({ OTEL_TRACES_EXPORTER: "", OTEL_EXPORTER_OTLP_ENDPOINT: "" })).toBe(false);
  });

  it("names the service from OTEL_SERVICE_NAME", () => {
    expect(loadConfig({ OTEL_SERVICE_NAME: "zen-eu-1" }).tracing.serviceName).toBe("zen-eu-1");
  });
});

describe("the tracer facade", () => {
  it("is the shared no-op when off: the same span every time, no context to propagate", async () => {
    const tracing = await createTracing({ enabled: false, serviceName: "x" });
    expect(tracing).toBe(NOOP_TRACING);
    const a = tracing.startSpan("a", { parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
    expect(a).toBe(tracing.startSpan("b"));
    expect(a.traceparent).toBeUndefined();
    a.setAttributes({ k: 1 });
    a.fail("nothing");
    a.end();
  });

  it("starts a root span, or a child of a valid traceparent, and formats its own", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await createTracing({ enabled: false, serviceName: "x" }, { spanProcessors: [new SimpleSpanProcessor(exporter)] });
    expect(tracing.enabled).toBe(true);
    const root = tracing.startSpan("root", { kind: "server" });
    expect(root.traceparent).toMatch(TRACEPARENT);
    const child = tracing.startSpan("child", { parent: root.traceparent, kind: "consumer", attributes: { "zen.x": "y" } });
    const [, rootTrace, rootSpan] = TRACEPARENT.exec(root.traceparent!)!;
    expect(TRACEPARENT.exec(child.traceparent!)![1]).toBe(rootTrace);
    const orphan = tracing.startSpan("orphan", { parent: "not-a-traceparent" });
    expect(TRACEPARENT.exec(orphan.traceparent!)![1]).not.toBe(rootTrace);
    child.end();
    root.end();
    orphan.end();
    const spans = exporter.getFinishedSpans();
    const childSpan = spans.find((s) => s.name === "child")!;
    expect(childSpan.parentSpanContext?.spanId).toBe(rootSpan);
    expect(childSpan.parentSpanContext?.isRemote).toBe(true);
    expect(childSpan.attributes["zen.x"]).toBe("y");
    expect(spans.find((s) => s.name === "orphan")!.parentSpanContext).toBeUndefined();
    await tracing.shutdown();
  });

  it("withSpan marks a throw as an error, rethrows it and ends the span", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await createTracing({ enabled: true, serviceName: "x" }, { spanProcessors: [new SimpleSpanProcessor(exporter)] });
    await expect(
      withSpan(tracing, "boom", {}, async () => {
        throw new TypeError("bad\nsecond line");
      }),
    ).rejects.toThrow("bad");
    const [span] = exporter.getFinishedSpans();
    expect(span!.status).toEqual({ code: 2, message: "TypeError: bad" });
    await tracing.shutdown();
  });
});

describe("the OpenTelemetry Node SDK path (OTEL_* variables)", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  it("exports spans, and only spans, over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, with the service name", async () => {
    const bodies: Array<{ path: string; body: string }> = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        bodies.push({ path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = collector.address() as AddressInfo;
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
      process.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json";
      const config = loadConfig(process.env);
      expect(config.tracing.enabled).toBe(true);
      const tracing = await createTracing({ ...config.tracing, serviceName: "zen-unit" });
      const span = tracing.startSpan("webhook.unit", { kind: "internal" });
      expect(span.traceparent).toMatch(TRACEPARENT);
      span.end();
      // A library that records metrics or logs through the global OpenTelemetry APIs: neither may
      // reach an exporter (the SDK would otherwise install OTLP metric and log exporters too).
      metrics.getMeter("unit").createCounter("zen_unit_total").add(1);
      emitGlobalLogRecord("a log record");
      await tracing.shutdown(); // flushes the batch
      expect(bodies.map((b) => b.path)).toEqual(["/v1/traces"]);
      const traces = bodies.filter((b) => b.path === "/v1/traces");
      expect(traces).toHaveLength(1);
      expect(traces[0]!.body).toContain("webhook.unit");
      expect(traces[0]!.body).toContain("zen-unit");
      expect(traces[0]!.body).toContain(TRACEPARENT.exec(span.traceparent!)![1]);
    } finally {
      await new Promise<void>((resolve) => collector.close(() => resolve()));
    }
  });
});

/**
 * Emits a log record through the global OpenTelemetry logs API, as an instrumented library would
 * (read from its global slot, so the test needs no import of \`@opentelemetry/api-logs\`).
 */
function emitGlobalLogRecord(body: string): void {
  type LoggerProvider = { getLogger(name: string): { emit(record: { body: string }): void } };
  const getter = (globalThis as Record<symbol, ((version: number) => LoggerProvider) | undefined>)[Symbol.for("io.opentelemetry.js.api.logs")];
  getter?.(1).getLogger("unit").emit({ body });
}
