import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ListOf } from "../../../contracts/http/common.js";
import { DeliveryDetailOut, DeliveryOut, DeliveryParams, DeliveryQuery, DlqEntryOut, DlqQuery } from "../../../contracts/http/deliveries.js";
import { tenantOf } from "../auth.js";
import * as E from "../errors.js";
import { minSeqHook } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

const read = { scope: "deliveries:read" as const, tenantScoped: true };
const tags = ["deliveries"];

/** Deliveries and the DLQ, from the Postgres read models (honouring X-Zen-Min-Seq). */
export const deliveryRoutes: FastifyPluginAsyncZod<{ readModels: ReadModels }> = async (app, { readModels }) => {
  app.addHook("preHandler", minSeqHook(readModels));

  app.get(
    "/v1/webhooks/deliveries",
    {
      config: read,
      schema: {
        tags,
        summary: "List deliveries",
        querystring: DeliveryQuery,
        response: { 200: ListOf(DeliveryOut), ...errorResponses(...TENANT_ERRORS) },
      },
    },
    async (request) => readModels.listDeliveries(tenantOf(request), request.query),
  );

  app.get(
    "/v1/webhooks/deliveries/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Read a delivery with its attempts and routing decision",
        params: DeliveryParams,
        response: { 200: DeliveryDetailOut, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const delivery = await readModels.getDelivery(tenantOf(request), request.params.id);
      if (!delivery) throw E.notFound("delivery not found");
      return delivery;
    },
  );

  app.get(
    "/v1/webhooks/dlq",
    {
      config: read,
      schema: { tags, summary: "List dead-lettered deliveries", querystring: DlqQuery, response: { 200: ListOf(DlqEntryOut), ...errorResponses(...TENANT_ERRORS) } },
    },
    async (request) => readModels.listDlq(tenantOf(request), request.query),
  );
};
