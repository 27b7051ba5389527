import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ListOf, PageQuery } from "../../../contracts/http/common.js";
import { SourceOut, SourceParams } from "../../../contracts/http/sources.js";
import { tenantOf } from "../auth.js";
import * as E from "../errors.js";
import { minSeqHook } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

const read = { scope: "webhooks:read" as const, tenantScoped: true };
const tags = ["sources"];

/** Inbound source reads, from the Postgres read models (honouring X-Zen-Min-Seq); never a secret. */
export const sourceReadRoutes: FastifyPluginAsyncZod<{ readModels: ReadModels }> = async (app, { readModels }) => {
  app.addHook("preHandler", minSeqHook(readModels));

  app.get(
    "/v1/webhooks/sources",
    {
      config: read,
      schema: { tags, summary: "List inbound sources", querystring: PageQuery, response: { 200: ListOf(SourceOut), ...errorResponses(...TENANT_ERRORS) } },
    },
    async (request) => readModels.listSources(tenantOf(request), request.query),
  );

  app.get(
    "/v1/webhooks/sources/:id",
    {
      config: read,
      schema: { tags, summary: "Read an inbound source", params: SourceParams, response: { 200: SourceOut, ...errorResponses(...TENANT_ERRORS, 404) } },
    },
    async (request) => {
      const source = await readModels.getSource(tenantOf(request), request.params.id);
      if (!source) throw E.notFound("source not found");
      return source;
    },
  );
};
