import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ParkReason } from "../contracts/events.js";
import { READ_MODELS_PROJECTION } from "../projections/checkpoint.js";
import {
  ATTEMPT_OUTCOMES,
  CONSUMER_ROLES,
  createMetrics,
  DEFERRAL_REASONS,
  INBOUND_OUTCOMES,
  INGEST_OUTCOMES,
  NO_SCHEME,
  QUOTAS,
  SIGNATURE_REASONS,
  SIGNATURE_SCHEMES,
  STATUS_CLASSES,
} from "../services/shared/metrics.js";

const ROOT = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/**
 * Every series name the platform exposes, read from the metrics module itself: each metric of a
 * registry with every optional gauge registered, default process metrics included, histograms
 * and summaries with their `_bucket` / `_count` / `_sum` series.
 */
async function exposedSeries(): Promise<Set<string>> {
  const metrics = createMetrics({
    dlqSize: async () => 0,
    circuitOpenEndpoints: () => 0,
    consumerPending: async () => [],
    projectionLag: async () => [],
  });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === "histogram") for (const suffix of ["_bucket", "_count", "_sum"]) names.add(metric.name + suffix);
    if (type === "summary") for (const suffix of ["_count", "_sum"]) names.add(metric.name + suffix);
  }
  return names;
}

const SCHEMES = [...SIGNATURE_SCHEMES, NO_SCHEME];
/** The closed set of values of each bounded label, per metric (as services/shared/metrics.ts writes them). */
const CLOSED_VALUES: Record<string, Record<string, readonly string[]>> = {
  webhook_ingest_requests_total: { outcome: INGEST_OUTCOMES },
  webhook_inbound_requests_total: { scheme: SCHEMES, outcome: INBOUND_OUTCOMES },
  webhook_signature_failures_total: { scheme: SCHEMES, reason: SIGNATURE_REASONS },
  webhook_delivery_attempts_total: { outcome: ATTEMPT_OUTCOMES, status_class: STATUS_CLASSES },
  webhook_delivery_deferrals_total: { reason: DEFERRAL_REASONS },
  webhook_quota_refusals_total: { quota: QUOTAS },
  webhook_parked_messages_total: { reactor: CONSUMER_ROLES, reason: ParkReason.options },
  http_request_duration_seconds: { status_class: STATUS_CLASSES },
  webhook_consumer_pending: { consumer: CONSUMER_ROLES },
  webhook_consumer_ack_pending: { consumer: CONSUMER_ROLES },
  webhook_projection_lag_events: { projection: [READ_MODELS_PROJECTION] },
};
/** Labels whose values are open (a route pattern, an HTTP method), checked by name only. */
const OPEN_LABELS = new Set(["route", "method"]);
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ["instance", "job"];

/** Each exposed metric's label names, by series name (a histogram's `_bucket` adds `le`). */
function labelNamesBySeries(): Map<string, { metric: string; labels: Set<string> }> {
  const metrics = createMetrics({ dlqSize: async () => 0, circuitOpenEndpoints: () => 0, consumerPending: async () => [], projectionLag: async () => [] });
  const bySeries = new Map<string, { metric: string; labels: Set<string> }>();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    const { name, labelNames = [] } = metric as unknown as { name: string; labelNames?: string[] };
    const labels = new Set([...labelNames, ...TARGET_LABELS]);
    bySeries.set(name, { metric: name, labels });
    for (const suffix of ["_count", "_sum"]) bySeries.set(name + suffix, { metric: name, labels });
    bySeries.set(`${name}_bucket`, { metric: name, labels: new Set([...labels, "le"]) });
  }
  return bySeries;
}

/**
 * What an expression does with labels that no metric has, or with values outside a bounded
 * label's closed set: one line per problem. Checks the matchers of each selector against its
 * metric, the `by (…)` / `without (…)` lists and `{{label}}` legends against the expression's metrics.
 */
function labelProblems(expr: string, legendFormat = ""): string[] {
  const series = labelNamesBySeries();
  const problems: string[] = [];
  const bare = expr.replace(/\[[^\]]*\]/g, " ");
  const metricsUsed = metricNamesIn(expr)
    .map((name) => series.get(name))
    .filter((m) => m !== undefined);
  const anyHas = (label: string) => metricsUsed.some((m) => m.labels.has(label));
  for (const selector of bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const known = series.get(selector[1]!);
    if (!known) continue; // an unknown metric: the metric-name check says so
    for (const matcher of selector[2]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      const [, label, op, value] = matcher as unknown as [string, string, string, string];
      if (!known.labels.has(label)) {
        problems.push(`${known.metric} has no label ${label}`);
        continue;
      }
      const closed = CLOSED_VALUES[known.metric]?.[label];
      if (!closed) {
        if (!OPEN_LABELS.has(label) && !TARGET_LABELS.includes(label) && label !== "le") problems.push(`${known.metric}{${label}} has no closed set of values`);
        continue;
      }
      const values = op === "=~" || op === "!~" ? value.split("|") : [value];
      for (const v of values) if (!closed.includes(v)) problems.push(`${known.metric}{${label}${op}"${value}"}: ${v} is not one of ${closed.join(", ")}`);
    }
  }
  for (const list of bare.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list[1]!
      .split(",")
      .map((l) => l.trim())
      .filter(Boolean))
      if (!anyHas(label)) problems.push(`no metric of the expression has label ${label} (by/without)`);
  }
  for (const legend of legendFormat.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
    if (!anyHas(legend[1]!)) problems.push(`no metric of the expression has label ${legend[1]} (legend)`);
  }
  return problems;
}

const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/** The metric names a PromQL expression selects (not functions, keywords, labels or Grafana variables). */
function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, "") // string literals
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // range and subquery selectors, $__rate_interval
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ") // label lists
    .replace(/\$\{?\w+\}?/g, " "); // other Grafana variables
  const names = new Set<string>();
  for (const match of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = match[0];
    const next = bare.slice(match.index! + word.length).trimStart();
    if (next.startsWith("(") || PROMQL_WORDS.has(word.toLowerCase())) continue; // a function or keyword
    if (/^\d/.test(word)) continue;
    names.add(word);
  }
  return [...names];
}

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Array<{ expr: string; refId: string; legendFormat?: string }>;
  panels?: Panel[];
}

const dashboard = JSON.parse(read("infra/grafana/dashboard.json")) as { uid: string; panels: Panel[] };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== "row");

const alertRules = (parse(read("infra/prometheus/alerts.yml")) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for: string }> }> }).groups.flatMap(
  (g) => g.rules,
);

describe("the PromQL metric-name extractor", () => {
  it("finds selected metrics and skips functions, keywords, labels and variables", () => {
    expect(metricNamesIn('histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{status_class="5xx"}[$__rate_interval])))')).toEqual([
      "http_request_duration_seconds_bucket",
    ]);
    expect(metricNamesIn("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.05 and on (job) up").sort()).toEqual(["a_total", "b_total", "up"]);
    expect(metricNamesIn("max by (consumer) (webhook_consumer_pending) > 10000")).toEqual(["webhook_consumer_pending"]);
  });
});

describe("the PromQL label checker", () => {
  it("accepts labels and values the metrics have", () => {
    expect(labelProblems('sum by (outcome) (rate(webhook_ingest_requests_total{outcome=~"accepted|replayed"}[5m]))', "{{outcome}}")).toEqual([]);
    expect(
      labelProblems(
        'sum(rate(webhook_signature_failures_total{reason!="replayed",scheme="github"}[5m])) / sum(rate(webhook_inbound_requests_total{outcome=~"accepted|refused"}[5m]))',
      ),
    ).toEqual([]);
    expect(
      labelProblems('histogram_quantile(0.5, sum by (le, route) (rate(http_request_duration_seconds_bucket{status_class="5xx",route!~"/health|/ready"}[5m])))'),
    ).toEqual([]);
    expect(labelProblems('max by (consumer) (webhook_consumer_pending{consumer="dispatcher"})', "{{consumer}} {{instance}}")).toEqual([]);
  });

  it("finds unknown labels and values outside a label's closed set", () => {
    expect(labelProblems('sum(rate(webhook_ingest_requests_total{outcome="acepted"}[5m]))')).toEqual([expect.stringContaining("acepted is not one of")]);
    expect(labelProblems('sum(rate(webhook_inbound_requests_total{outcome=~"accepted|duplicate"}[5m]))')).toEqual([expect.stringContaining("duplicate is not one of")]);
    expect(labelProblems('webhook_delivery_attempts_total{status_class="2XX"}')).toHaveLength(1);
    expect(labelProblems('webhook_consumer_pending{consumer="projector"}')).toHaveLength(1);
    expect(labelProblems('webhook_projection_lag_events{projection="readmodels"}')).toHaveLength(1);
    expect(labelProblems('webhook_signature_failures_total{scheme="gitlab"}')).toHaveLength(1);
    expect(labelProblems('webhook_ingest_requests_total{scheme="github"}')).toEqual(["webhook_ingest_requests_total has no label scheme"]);
    expect(labelProblems("sum by (tenant) (rate(webhook_ingest_requests_total[5m]))")).toEqual([expect.stringContaining("label tenant")]);
    expect(labelProblems("sum(rate(webhook_retries_total[5m]))", "{{outcome}}")).toEqual([expect.stringContaining("label outcome (legend)")]);
  });

  it("knows a closed set for every label of the platform's own metrics but route and method", () => {
    const missing: string[] = [];
    for (const { metric, labels } of labelNamesBySeries().values()) {
      if (!metric.startsWith("webhook_") && metric !== "http_request_duration_seconds") continue;
      for (const label of labels) {
        if (OPEN_LABELS.has(label) || TARGET_LABELS.includes(label) || label === "le") continue;
        if (!CLOSED_VALUES[metric]?.[label]) missing.push(`${metric}{${label}}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe("infra/grafana/dashboard.json", () => {
  it("has panels, each with at least one query, unique ids, within the 24-column grid", () => {
    expect(dashboard.uid).toBe("zen-webhooks");
    expect(queryPanels.length).toBeGreaterThan(10);
    for (const panel of queryPanels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets!) expect(target.expr.trim(), panel.title).not.toBe("");
    }
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels as Array<Panel & { gridPos: { x: number; w: number } }>) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
  });

  it("queries only metrics the platform exposes (services/shared/metrics.ts, default process metrics)", async () => {
    const exposed = await exposedSeries();
    const unknown: string[] = [];
    for (const panel of queryPanels) {
      for (const target of panel.targets ?? []) {
        for (const name of metricNamesIn(target.expr)) if (!exposed.has(name)) unknown.push(`${panel.title} (${target.refId}): ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it("uses only labels the metrics have, and values from each bounded label's closed set", () => {
    const problems = queryPanels.flatMap((panel) =>
      (panel.targets ?? []).flatMap((t) => labelProblems(t.expr, t.legendFormat).map((p) => `${panel.title} (${t.refId}): ${p}`)),
    );
    expect(problems).toEqual([]);
  });

  it("divides signature failures by inbound requests, not by API ingest", () => {
    const ratio = queryPanels.find((p) => p.title === "Signature failure ratio")!;
    expect(metricNamesIn(ratio.targets![0]!.expr).sort()).toEqual(["webhook_inbound_requests_total", "webhook_signature_failures_total"]);
  });

  it("shows ingest rate, attempt outcomes, latency percentiles, DLQ, circuits and lag", () => {
    const used = new Set(queryPanels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNamesIn(t.expr))));
    for (const name of [
      "webhook_ingest_requests_total",
      "webhook_inbound_requests_total",
      "webhook_signature_failures_total",
      "webhook_delivery_attempts_total",
      "webhook_delivery_latency_seconds_bucket",
      "webhook_delivery_attempt_duration_seconds_bucket",
      "webhook_dlq_size",
      "webhook_circuit_open_endpoints",
      "webhook_projection_lag_events",
      "webhook_consumer_pending",
      "webhook_consumer_ack_pending",
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });
});

describe("infra/prometheus/alerts.yml", () => {
  it("has the issue's six alerts and the dispatcher's unacked limit, on metrics the platform exposes", async () => {
    expect(alertRules.map((r) => r.alert).sort()).toEqual([
      "WebhookApiHigh5xxRate",
      "WebhookConsumerBacklog",
      "WebhookDeliveryLatencyP95High",
      "WebhookDispatcherAckPendingHigh",
      "WebhookDlqSizeHigh",
      "WebhookMessagesParked",
      "WebhookProjectionLag",
      "WebhookSignatureFailures",
    ]);
    const exposed = await exposedSeries();
    const unknown = alertRules.flatMap((r) =>
      metricNamesIn(r.expr)
        .filter((n) => !exposed.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it("uses only labels the metrics have, and values from each bounded label's closed set", () => {
    expect(alertRules.flatMap((r) => labelProblems(r.expr).map((p) => `${r.alert}: ${p}`))).toEqual([]);
  });

  it("measures signature failures against inbound requests, replays left out", () => {
    const rule = alertRules.find((r) => r.alert === "WebhookSignatureFailures")!;
    expect(metricNamesIn(rule.expr).sort()).toEqual(["webhook_inbound_requests_total", "webhook_signature_failures_total"]);
    expect(rule.expr).toMatch(/webhook_signature_failures_total\{reason!="replayed"\}/);
  });
});
