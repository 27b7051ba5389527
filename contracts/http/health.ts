import { z } from "zod";

export const HealthOut = z.object({ status: z.literal("ok") }).describe("The process is alive");

export const ReadyOut = z
  .object({
    status: z.enum(["ready", "unavailable"]),
    checks: z.object({ nats: z.boolean(), postgres: z.boolean() }).describe("Each dependency: reachable or not"),
  })
  .describe("Whether the dependencies answer");
export type ReadyOut = z.infer<typeof ReadyOut>;
