import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import { healthRoutes, metricsRoute, type Readiness, RequestLogController } from "../shared/ops-http.js";

/** What the ops server serves: the process's one registry and its readiness. */
export interface OpsServerDeps {
  metrics: Metrics;
  readiness: Readiness;
  /** `/readyz`, in a process with a database (the projector's); absent: no `/readyz`. */
  migrationsApplied?: () => Promise<boolean>;
  logger: Logger;
}

/**
 * The ops endpoints of a process that runs no api (router, dispatcher, projector, replayer alone):
 * `GET /metrics` from the process's registry (the same one its roles record into), `/health`,
 * `/ready` for the dependencies of its roles, and `/readyz` where it has a database; the api's own
 * handlers, without its auth, request metrics or other routes. Not listening: the caller listens.
 */
export async function buildOpsServer({ metrics, readiness, migrationsApplied, logger }: OpsServerDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: logger.child({ role: "ops" }), logController: new RequestLogController() });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(metricsRoute, { metrics });
  await app.register(healthRoutes, { readiness, migrationsApplied });
  return app as unknown as FastifyInstance;
}
