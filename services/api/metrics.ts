import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { QUOTAS, statusClass, type Metrics, type Quota } from "../shared/metrics.js";
import { ApiError } from "./errors.js";
import { metricsRoute } from "../shared/ops-http.js";

/** The `route` label of a request no route matched: one series, whatever the URL. */
const UNMATCHED = "unmatched";

/**
 * `http_request_duration_seconds` for every api response, labelled by the route pattern (never the
 * URL), and {@link metricsRoute}.
 */
export const metricsPlugin = fp<{ metrics: Metrics }>(
  async (app: FastifyInstance, { metrics }) => {
    // A quota's refusal names it in the error's details (422 quota_exceeded, the live feeds' 429).
    app.addHook("onError", async (_request, _reply, error) => {
      const quota = error instanceof ApiError ? (error.details as { quota?: string } | undefined)?.quota : undefined;
      if (quota !== undefined && (QUOTAS as readonly string[]).includes(quota)) metrics.quotaRefused(quota as Quota);
    });
    app.addHook("onResponse", async (request, reply) => {
      const labels = { route: request.routeOptions.url ?? UNMATCHED, method: request.method, status_class: statusClass(reply.statusCode) };
      metrics.httpRequestDuration.observe(labels, reply.elapsedTime / 1_000);
    });
    await app.register(metricsRoute, { metrics });
  },
  { name: "zen-metrics" },
);
