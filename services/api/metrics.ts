import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { statusClass, type Metrics } from "../shared/metrics.js";
import { metricsRoute } from "../shared/ops-http.js";

/** The `route` label of a request no route matched: one series, whatever the URL. */
const UNMATCHED = "unmatched";

/**
 * `http_request_duration_seconds` for every api response, labelled by the route pattern (never the
 * URL), and {@link metricsRoute}.
 */
export const metricsPlugin = fp<{ metrics: Metrics }>(
  async (app: FastifyInstance, { metrics }) => {
    app.addHook("onResponse", async (request, reply) => {
      const labels = { route: request.routeOptions.url ?? UNMATCHED, method: request.method, status_class: statusClass(reply.statusCode) };
      metrics.httpRequestDuration.observe(labels, reply.elapsedTime / 1_000);
    });
    await app.register(metricsRoute, { metrics });
  },
  { name: "zen-metrics" },
);
