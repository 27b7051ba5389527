import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { AuditEntryOut, AuditQuery } from "../../../contracts/http/audit.js";
import { ListOf } from "../../../contracts/http/common.js";
import { tenantOf } from "../auth.js";
import { minSeqHook } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

/** `GET /v1/audit`: the tenant's audit log from the read model (honouring X-Zen-Min-Seq). */
export const auditRoutes: FastifyPluginAsyncZod<{ readModels: ReadModels }> = async (app, { readModels }) => {
  app.addHook("preHandler", minSeqHook(readModels));

  app.get(
    "/v1/audit",
    {
      config: { scope: "audit:read" as const, tenantScoped: true },
      schema: {
        tags: ["audit"],
        summary: "List the tenant's audit log: who changed what, when, with which request id",
        querystring: AuditQuery,
        response: { 200: ListOf(AuditEntryOut), ...errorResponses(...TENANT_ERRORS) },
      },
    },
    async (request) => readModels.listAudit(tenantOf(request), request.query),
  );
};
