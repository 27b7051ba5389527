import { z } from "zod";

export const HealthOut = z.object({ status: z.literal("ok") }).describe("The process is alive");

export const ReadyOut = z
  .object({
    status: z
      .enum(["ready", "degraded", "unavailable"])
      .describe("ready; degraded: serving, but the read models are behind the stream; unavailable: a dependency failed"),
    checks: z
      .object({
        nats: z.boolean(),
        postgres: z.boolean().optional().describe("Postgres answers; absent in a process without a database (router, dispatcher or replayer alone)"),
        consumers: z.boolean().optional().describe("The durable consumers this process runs are bound"),
        readModels: z.boolean().optional().describe("The read models keep up with the stream"),
      })
      .describe("Each dependency: reachable or not"),
  })
  .describe("Whether the dependencies answer");
export type ReadyOut = z.infer<typeof ReadyOut>;

export const ReadyzOut = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.object({ migrations: z.boolean().describe("Every database migration is applied") }),
  })
  .describe("Whether the database schema is current");
export type ReadyzOut = z.infer<typeof ReadyzOut>;
