import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { HealthOut, ReadyOut, ReadyzOut } from "../../contracts/http/health.js";
import type { Metrics } from "./metrics.js";

/**
 * The HTTP pieces every process serves, whether its api does (services/api/app.ts) or its ops server
 * (services/ops/ops-server.ts, in a process without the api): `/health`, `/ready`, `/readyz`,
 * `/metrics` and the one-line-per-request log.
 */

/**
 * Whether each dependency answers; `/ready` reports it. `postgres` (absent in a process without a
 * database: router, dispatcher or replayer alone), `consumers` (the process's loops run and its
 * durable consumers exist) and `readModels` (the read models keep up with the stream) are there when checked.
 */
export interface ReadinessChecks {
  nats: boolean;
  postgres?: boolean;
  consumers?: boolean;
  readModels?: boolean;
}
export type Readiness = () => Promise<ReadinessChecks>;

/** `unavailable` when a dependency fails, `degraded` when only the read models are behind, else `ready`. */
export function readinessStatus(checks: ReadinessChecks): "ready" | "degraded" | "unavailable" {
  if (!checks.nats || checks.postgres === false || checks.consumers === false) return "unavailable";
  return checks.readModels === false ? "degraded" : "ready";
}

const open = { scope: null };
const MIGRATIONS_TIMEOUT_MS = 2_000;

/** `migrationsApplied` absent (a process without a database): no `/readyz`. */
type Deps = { readiness: Readiness; migrationsApplied?: () => Promise<boolean> };

/** Liveness and readiness; no credential needed. */
export const healthRoutes: FastifyPluginAsyncZod<Deps> = async (app, { readiness, migrationsApplied }) => {
  app.get("/health", { config: open, schema: { tags: ["health"], summary: "Liveness", response: { 200: HealthOut } } }, async () => ({
    status: "ok" as const,
  }));

  app.get(
    "/ready",
    {
      config: open,
      schema: {
        tags: ["health"],
        summary: "Whether NATS and Postgres answer and the consumers are bound (200 ready or degraded, 503 unavailable)",
        response: { 200: ReadyOut, 503: ReadyOut },
      },
    },
    async (_request, reply) => {
      const checks = await readiness();
      const status = readinessStatus(checks);
      return reply.status(status === "unavailable" ? 503 : 200).send({ status, checks });
    },
  );

  if (!migrationsApplied) return;
  app.get(
    "/readyz",
    {
      config: open,
      schema: { tags: ["health"], summary: "Whether every database migration is applied", response: { 200: ReadyzOut, 503: ReadyzOut } },
    },
    async (_request, reply) => {
      const migrations = await withinTimeout(migrationsApplied);
      return reply.status(migrations ? 200 : 503).send({ status: migrations ? "ready" : "unavailable", checks: { migrations } });
    },
  );
};

/** True when `check` answers true in time; false on false, an error or a timeout. */
async function withinTimeout(check: () => Promise<boolean>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), MIGRATIONS_TIMEOUT_MS)));
  try {
    return await Promise.race([check().catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `GET /metrics`: the process's registry in Prometheus text format, open like the health routes. */
export const metricsRoute = fp<{ metrics: Metrics }>(
  async (app: FastifyInstance, { metrics }) => {
    app.get("/metrics", { config: { scope: null }, schema: { hide: true } }, async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    });
  },
  { name: "zen-metrics-route" },
);

/**
 * Fastify's request logging as one line per request, written when the response is sent: method, URL,
 * route pattern, status, time and the tenant, on `request.log`, which carries the `correlationId` of
 * every event the request causes (its request id, as the log controller's `requestIdLogLabel`; the router's and
 * dispatcher's lines name it alike) and, for a request in a span (ingest and inbound with tracing
 * on), `traceId`. Open routes (health, metrics) log at debug.
 */
export class RequestLogController extends LogController {
  constructor() {
    // The key of the request id on every line `request.log` writes: the `correlationId` of the
    // events the request causes, named as the router's and dispatcher's lines name it.
    super({ requestIdLogLabel: "correlationId" });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url,
      route: request.routeOptions.url,
      statusCode: reply.statusCode,
      responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
      // A tenant-scoped route's X-Tenant-Id once authenticated, or an operator route's :tenantId.
      tenantId: (request as { auth?: { tenantId?: string } | null }).auth?.tenantId ?? (request.params as { tenantId?: string } | undefined)?.tenantId,
    };
    if (error) request.log.error({ ...line, err: error }, "request errored");
    else request.log[(request.routeOptions.config as { scope?: unknown } | undefined)?.scope === null ? "debug" : "info"](line, "request completed");
  }
}
