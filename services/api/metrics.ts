import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { statusClass, type Metrics } from "../shared/metrics.js";

/** The `route` label of a request no route matched: one series, whatever the URL. */
const UNMATCHED = "unmatched";

/** `GET /metrics`: the process's registry in Prometheus text format, open like the health routes. */
export const metricsRoute = fp<{ metrics: Metrics }>(async (app: FastifyInstance, { metrics }) => {
  app.get("/metrics", { config: { scope: null }, schema: { hide: true } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}, { name: "zen-metrics-route" });

/**
 * `http_request_duration_seconds` for every api response, labelled by the route pattern (never the
 * URL), and {@link metricsRoute}.
 */
export const metricsPlugin = fp<{ metrics: Metrics }>(async (app: FastifyInstance, { metrics }) => {
  app.addHook("onResponse", async (request, reply) => {
    const labels = { route: request.routeOptions.url ?? UNMATCHED, method: request.method, status_class: statusClass(reply.statusCode) };
    metrics.httpRequestDuration.observe(labels, reply.elapsedTime / 1_000);
  });
  await app.register(metricsRoute, { metrics });
}, { name: "zen-metrics" });
