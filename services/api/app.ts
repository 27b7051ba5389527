import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { authPlugin } from "./auth.js";
import type { ApiDeps } from "./deps.js";
import { registerDocs } from "./docs.js";
import { createEventIdClaims, type EventIdClaims } from "./event-ids.js";
import { createErrorHandler, notFoundHandler } from "./error-handler.js";
import { metricsPlugin } from "./metrics.js";
import { genReqId, plumbingPlugin, RequestLogController } from "./plumbing.js";
import { createReadModels } from "./read-models.js";
import { createReadiness } from "./readiness.js";
import { auditRoutes } from "./routes/audit.js";
import { deliveryRoutes } from "./routes/deliveries.js";
import { healthRoutes } from "./routes/health.js";
import { ingestRoutes } from "./routes/ingest.js";
import { registryReadRoutes } from "./routes/registry-reads.js";
import { registryRoutes } from "./routes/registry.js";
import { createReplayReads, replayRoutes } from "./routes/replay.js";
import { tenantRoutes } from "./routes/tenants.js";
import { testSendRoutes } from "./routes/test-send.js";
import { migrationsApplied } from "../../projections/index.js";
import { createMetrics } from "../shared/metrics.js";

export type { ApiDeps, Readiness, RegistryPort } from "./deps.js";

/**
 * The api as a Fastify app, not listening: `main` calls `listen`, tests call `inject`. Plumbing and
 * auth are app-wide hooks; each group of routes is a plugin in its own scope, given only the ports
 * it uses.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ role: "api" }),
    genReqId,
    requestIdHeader: false,
    bodyLimit: deps.config.maxBodyBytes,
    return503OnClosing: true,
    // One line per request instead of fastify's two, with the tenant and the route.
    logController: new RequestLogController(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(createErrorHandler(deps.config.maxBodyBytes));
  app.setNotFoundHandler(notFoundHandler);
  // JSON only: without a text/plain parser, any other media type is a 415.
  app.removeContentTypeParser("text/plain");

  const now = deps.now ?? (() => new Date());
  const readModels = deps.readModels ?? createReadModels(deps.db);
  const readiness = deps.readiness ?? createReadiness({ nc: deps.streams?.nc, readModels, probes: deps.probes, lag: deps.readyLag });
  const metrics = deps.metrics ?? createMetrics();
  const eventIds = deps.eventIds ?? (await openEventIds(deps));

  await registerDocs(app as unknown as FastifyInstance);
  await app.register(plumbingPlugin);
  await app.register(metricsPlugin, { metrics });
  await app.register(authPlugin, { config: deps.config, store: deps.store, view: deps.view });
  await app.register(healthRoutes, { readiness, migrationsApplied: deps.migrationsApplied ?? (() => migrationsApplied(deps.db)) });
  await app.register(tenantRoutes, { store: deps.store, view: deps.view, now });
  await app.register(ingestRoutes, { store: deps.store, eventIds, now, metrics, tracing: deps.tracing });
  await app.register(registryRoutes, { store: deps.store, view: deps.view, secretBox: deps.secretBox, config: deps.config, now });
  await app.register(registryReadRoutes, { readModels });
  await app.register(testSendRoutes, { view: deps.view, secretBox: deps.secretBox, config: deps.config, now });
  await app.register(deliveryRoutes, { readModels });
  await app.register(auditRoutes, { readModels });
  await app.register(replayRoutes, { store: deps.store, reads: createReplayReads(deps.db), readModels, now });
  return app as unknown as FastifyInstance;
}

function openEventIds({ streams, topology }: ApiDeps): Promise<EventIdClaims> {
  if (!streams) throw new Error("buildApp needs `streams` (or an `eventIds` port) for ingest dedupe");
  return createEventIdClaims(streams.nc, topology);
}
