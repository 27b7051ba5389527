import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { HealthOut, ReadyOut, ReadyzOut } from "../../../contracts/http/health.js";
import type { Readiness } from "../deps.js";
import { readinessStatus } from "../readiness.js";

const open = { scope: null };
const MIGRATIONS_TIMEOUT_MS = 2_000;

/** `migrationsApplied` absent (a process without a database): no `/readyz`. */
type Deps = { readiness: Readiness; migrationsApplied?: () => Promise<boolean> };

/** Liveness and readiness; no credential needed. */
export const healthRoutes: FastifyPluginAsyncZod<Deps> = async (app, { readiness, migrationsApplied }) => {
  app.get("/health", { config: open, schema: { tags: ["health"], summary: "Liveness", response: { 200: HealthOut } } }, async () => ({
    status: "ok" as const,
  }));

  app.get("/ready", {
    config: open,
    schema: {
      tags: ["health"],
      summary: "Whether NATS and Postgres answer and the consumers are bound (200 ready or degraded, 503 unavailable)",
      response: { 200: ReadyOut, 503: ReadyOut },
    },
  }, async (_request, reply) => {
    const checks = await readiness();
    const status = readinessStatus(checks);
    return reply.status(status === "unavailable" ? 503 : 200).send({ status, checks });
  });

  if (!migrationsApplied) return;
  app.get("/readyz", {
    config: open,
    schema: { tags: ["health"], summary: "Whether every database migration is applied", response: { 200: ReadyzOut, 503: ReadyzOut } },
  }, async (_request, reply) => {
    const migrations = await withinTimeout(migrationsApplied);
    return reply.status(migrations ? 200 : 503).send({ status: migrations ? "ready" : "unavailable", checks: { migrations } });
  });
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
