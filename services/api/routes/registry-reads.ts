import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ListOf, PageQuery } from "../../../contracts/http/common.js";
import { EndpointOut, EndpointParams } from "../../../contracts/http/endpoints.js";
import { tenantOf } from "../auth.js";
import * as E from "../errors.js";
import { minSeqHook } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

const read = { scope: "webhooks:read" as const, tenantScoped: true };
const tags = ["registry"];

/** Registry reads, from the Postgres read models (honouring X-Zen-Min-Seq). */
export const registryReadRoutes: FastifyPluginAsyncZod<{ readModels: ReadModels }> = async (app, { readModels }) => {
  app.addHook("preHandler", minSeqHook(readModels));

  app.get(
    "/v1/webhooks/registry",
    {
      config: read,
      schema: { tags, summary: "List endpoints", querystring: PageQuery, response: { 200: ListOf(EndpointOut), ...errorResponses(...TENANT_ERRORS) } },
    },
    async (request) => readModels.listEndpoints(tenantOf(request), request.query),
  );

  app.get(
    "/v1/webhooks/registry/:id",
    {
      config: read,
      schema: { tags, summary: "Read an endpoint", params: EndpointParams, response: { 200: EndpointOut, ...errorResponses(...TENANT_ERRORS, 404) } },
    },
    async (request) => {
      const endpoint = await readModels.getEndpoint(tenantOf(request), request.params.id);
      if (!endpoint) throw E.notFound("endpoint not found");
      return endpoint;
    },
  );
};
