import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { HealthOut, ReadyOut } from "../../../contracts/http/health.js";
import type { Readiness } from "../deps.js";

const open = { scope: null };

/** Liveness and readiness; no credential needed. */
export const healthRoutes: FastifyPluginAsyncZod<{ readiness: Readiness }> = async (app, { readiness }) => {
  app.get("/health", { config: open, schema: { tags: ["health"], summary: "Liveness", response: { 200: HealthOut } } }, async () => ({
    status: "ok" as const,
  }));

  app.get("/ready", {
    config: open,
    schema: { tags: ["health"], summary: "Whether NATS and Postgres answer", response: { 200: ReadyOut, 503: ReadyOut } },
  }, async (_request, reply) => {
    const checks = await readiness();
    const ready = checks.nats && checks.postgres;
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", checks });
  });
};
