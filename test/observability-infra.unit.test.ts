import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createMetrics } from "../services/shared/metrics.js";

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
  targets?: Array<{ expr: string; refId: string }>;
  panels?: Panel[];
}

const dashboard = JSON.parse(read("infra/grafana/dashboard.json")) as { uid: string; panels: Panel[] };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== "row");

const alertRules = (parse(read("infra/prometheus/alerts.yml")) as { groups: Array<{ rules: Array<{ alert: string; expr: string; for: string }> }> }).groups.flatMap((g) => g.rules);

describe("the PromQL metric-name extractor", () => {
  it("finds selected metrics and skips functions, keywords, labels and variables", () => {
    expect(metricNamesIn('histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{status_class="5xx"}[$__rate_interval])))')).toEqual(["http_request_duration_seconds_bucket"]);
    expect(metricNamesIn("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.05 and on (job) up").sort()).toEqual(["a_total", "b_total", "up"]);
    expect(metricNamesIn("max by (consumer) (webhook_consumer_pending) > 10000")).toEqual(["webhook_consumer_pending"]);
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

  it("shows ingest rate, attempt outcomes, latency percentiles, DLQ, circuits and lag", () => {
    const used = new Set(queryPanels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNamesIn(t.expr))));
    for (const name of [
      "webhook_ingest_requests_total",
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
      "WebhookProjectionLag",
      "WebhookSignatureFailures",
    ]);
    const exposed = await exposedSeries();
    const unknown = alertRules.flatMap((r) => metricNamesIn(r.expr).filter((n) => !exposed.has(n)).map((n) => `${r.alert}: ${n}`));
    expect(unknown).toEqual([]);
  });
});
