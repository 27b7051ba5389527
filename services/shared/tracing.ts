import { isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type SpanContext, type Tracer } from "@opentelemetry/api";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { VERSION } from "./version.js";

/** Whether this process traces, decided from the environment by `loadConfig` (README "Tracing"). */
export interface TracingConfig {
  enabled: boolean;
  /** `service.name` of the spans: `OTEL_SERVICE_NAME`, else `zen-webhooks`. */
  serviceName: string;
}

export type SpanKindName = "server" | "client" | "consumer" | "producer" | "internal";

export interface StartSpanOptions {
  /** A W3C `traceparent` to continue (a message header, an incoming request's); a new trace when absent or invalid. */
  parent?: string | undefined;
  kind?: SpanKindName;
  attributes?: Attributes;
}

/** One span, or the shared no-op span when tracing is off. */
export interface TraceSpan {
  /** This span's W3C `traceparent`, for the events it appends and the requests it sends; undefined when off. */
  readonly traceparent: string | undefined;
  setAttributes(attributes: Attributes): void;
  /** Marks the span failed, with a short, secret-free reason. */
  fail(reason: string): void;
  end(): void;
}

/**
 * The tracer facade the roles use. Context is passed explicitly, as `traceparent` strings: no
 * global context manager, no propagator, no async-hooks work, so several platforms can trace in one
 * process (tests) and a process with tracing off does nothing but check `enabled`.
 */
export interface Tracing {
  readonly enabled: boolean;
  startSpan(name: string, options?: StartSpanOptions): TraceSpan;
  /** Flushes spans not yet exported, then stops the exporter. */
  shutdown(): Promise<void>;
}

const NOOP_SPAN: TraceSpan = Object.freeze({
  traceparent: undefined,
  setAttributes() {},
  fail() {},
  end() {},
});

/** Tracing off: every call returns at once, the same no-op span each time. */
export const NOOP_TRACING: Tracing = Object.freeze({
  enabled: false,
  startSpan: () => NOOP_SPAN,
  shutdown: async () => {},
});

export interface TracingOptions {
  /**
   * Span processors to use instead of the `OTEL_*` exporters, on a tracer provider of this instance
   * alone (never registered globally): tests pass `new SimpleSpanProcessor(new InMemorySpanExporter())`.
   */
  spanProcessors?: SpanProcessor[];
}

/**
 * Tracing off (the default): {@link NOOP_TRACING}, and no OpenTelemetry SDK is even loaded. On:
 * the OpenTelemetry Node SDK with the exporters the standard `OTEL_*` variables describe
 * (`OTEL_TRACES_EXPORTER`, default `otlp`; `OTEL_EXPORTER_OTLP_ENDPOINT`, `..._PROTOCOL`, sampler
 * and batch settings), registered as the process's tracer provider, with no metric or log
 * exporter; or, with `spanProcessors`, a private tracer provider.
 */
export async function createTracing(config: TracingConfig, options: TracingOptions = {}): Promise<Tracing> {
  if (!config.enabled && !options.spanProcessors) return NOOP_TRACING;
  const { parseTraceParent } = await import("@opentelemetry/core");
  if (options.spanProcessors) {
    const { BasicTracerProvider } = await import("@opentelemetry/sdk-trace-base");
    const provider = new BasicTracerProvider({ spanProcessors: options.spanProcessors });
    return tracingOver(provider.getTracer("zen-webhooks", VERSION), parseTraceParent, () => provider.shutdown());
  }
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({
    serviceName: config.serviceName,
    instrumentations: [],
    // Spans get their parent explicitly: no AsyncLocalStorage context manager (its promise hooks
    // cost on every await) and no global propagator.
    contextManager: null as never,
    textMapPropagator: null,
    // Traces only: without these the SDK installs the OTLP metric and log exporters of
    // OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER (both default to otlp). Metrics are prom-client's,
    // logs pino's. (An empty log processor list still registers a logger provider that exports nothing.)
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  const tracer = trace.getTracer("zen-webhooks", VERSION);
  return tracingOver(tracer, parseTraceParent, async () => {
    await sdk.shutdown();
    trace.disable();
  });
}

const KINDS: Record<SpanKindName, SpanKind> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  consumer: SpanKind.CONSUMER,
  producer: SpanKind.PRODUCER,
  internal: SpanKind.INTERNAL,
};

function tracingOver(tracer: Tracer, parseTraceParent: (value: string) => SpanContext | null, shutdown: () => Promise<void>): Tracing {
  return {
    enabled: true,
    startSpan(name, options = {}) {
      const parent = options.parent ? parseTraceParent(options.parent) : null;
      const context = parent ? trace.setSpanContext(ROOT_CONTEXT, { ...parent, isRemote: true }) : ROOT_CONTEXT;
      const span = tracer.startSpan(name, { kind: KINDS[options.kind ?? "internal"], attributes: options.attributes, root: !parent }, context);
      return wrap(span);
    },
    shutdown,
  };
}

function wrap(span: Span): TraceSpan {
  const spanContext = span.spanContext();
  const { traceId, spanId, traceFlags } = spanContext;
  return {
    // A no-op tracer (no exporter could be set up) makes invalid contexts: propagate nothing then.
    traceparent: isSpanContextValid(spanContext) ? `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, "0")}` : undefined,
    setAttributes: (attributes) => void span.setAttributes(attributes),
    fail: (reason) => void span.setStatus({ code: SpanStatusCode.ERROR, message: reason }),
    end: () => span.end(),
  };
}

/** A `traceparent` value as a header may hold it (string, array, absent). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return (Array.isArray(value) ? value[0] : value) || undefined;
}

/**
 * Runs `fn` inside a span: a throw marks the span failed (with the error's name and first line)
 * and is rethrown; the span ends either way.
 */
export async function withSpan<T>(tracing: Tracing, name: string, options: StartSpanOptions, fn: (span: TraceSpan) => Promise<T>): Promise<T> {
  const span = tracing.startSpan(name, options);
  try {
    return await fn(span);
  } catch (error) {
    const e = error as { name?: string; message?: string };
    span.fail(
      `${e.name ?? "Error"}: ${String(e.message ?? error)
        .split("\n")[0]!
        .slice(0, 200)}`,
    );
    throw error;
  } finally {
    span.end();
  }
}
