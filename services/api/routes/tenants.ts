import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { newId, newUlid } from "../../shared/ids.js";
import { ListOf, NoContent, PageQuery } from "../../../contracts/http/common.js";
import {
  ApiKeyIn,
  ApiKeyListItem,
  ApiKeyOut,
  ApiKeyParams,
  TenantIn,
  TenantLimitsIn,
  TenantLimitsOut,
  TenantOut,
  TenantParams,
} from "../../../contracts/http/tenants.js";
import { apiKeyDecider } from "../../../domain/apikey/apikey.js";
import { tenantDecider } from "../../../domain/tenant/tenant.js";
import { tenantExists } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import * as E from "../errors.js";
import { generateApiKey } from "../keys.js";
import { commandContext, minSeqHook, withSeq } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses, VIEW_WAIT_MS } from "./shared.js";

type Deps = Pick<ApiDeps, "store" | "view"> & { now: () => Date; readModels: Pick<ReadModels, "listApiKeys" | "waitForSeq"> };
const admin = { scope: "admin" as const };

/** Operator routes: tenants and their API keys. */
export const tenantRoutes: FastifyPluginAsyncZod<Deps> = async (app, deps) => {
  const { store, view, now } = deps;

  app.post(
    "/v1/tenants",
    {
      config: admin,
      schema: { tags: ["tenants"], summary: "Create a tenant", body: TenantIn, response: { 201: TenantOut, ...errorResponses(400, 401, 403, 415) } },
    },
    async (request, reply) => {
      const id = newId("tenant");
      const context = commandContext(request, now());
      const ref = { tenantId: id, aggregateType: "tenant" as const, aggregateId: id };
      const { lastSeq } = await store.handle(ref, tenantDecider, { type: "CreateTenant", name: request.body.name }, { causeId: id, context });
      request.log.info({ tenantId: id, seq: lastSeq }, "tenant created");
      await view.waitFor(lastSeq, VIEW_WAIT_MS);
      return withSeq(reply, lastSeq).status(201).send({ id, name: request.body.name, createdAt: context.now.toISOString() });
    },
  );

  app.post(
    "/v1/tenants/:tenantId/api-keys",
    {
      config: admin,
      schema: {
        tags: ["tenants"],
        summary: "Create an API key (the key is shown once)",
        params: TenantParams,
        body: ApiKeyIn,
        response: { 201: ApiKeyOut, ...errorResponses(400, 401, 403, 404, 415) },
      },
    },
    async (request, reply) => {
      const { tenantId } = request.params;
      if (!(await tenantExists(deps, tenantId))) throw E.notFound(`tenant ${tenantId} not found`);
      const { keyId, key, keyHash, keyPrefix } = generateApiKey();
      const { name, scopes } = request.body;
      const ref = { tenantId, aggregateType: "apikey" as const, aggregateId: keyId };
      const command = { type: "CreateApiKey" as const, name, scopes, keyHash, keyPrefix };
      const { lastSeq } = await store.handle(ref, apiKeyDecider, command, { causeId: keyId, context: commandContext(request, now()) });
      request.log.info({ tenantId, keyId, keyPrefix, scopes, seq: lastSeq }, "api key created");
      await view.waitFor(lastSeq, VIEW_WAIT_MS);
      return withSeq(reply, lastSeq).status(201).send({ id: keyId, key, keyPrefix, name, scopes });
    },
  );

  app.get(
    "/v1/tenants/:tenantId/api-keys",
    {
      config: admin,
      preHandler: minSeqHook(deps.readModels),
      schema: {
        tags: ["tenants"],
        summary: "List a tenant's API keys, with when each was last used (to the hour)",
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: ListOf(ApiKeyListItem), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { tenantId } = request.params;
      if (!(await tenantExists(deps, tenantId))) throw E.notFound(`tenant ${tenantId} not found`);
      return deps.readModels.listApiKeys(tenantId, request.query);
    },
  );

  app.put(
    "/v1/tenants/:tenantId/limits",
    {
      config: admin,
      schema: {
        tags: ["tenants"],
        summary: "Set a tenant's outbound and ingress limits",
        params: TenantParams,
        body: TenantLimitsIn,
        response: { 200: TenantLimitsOut, ...errorResponses(400, 401, 403, 404, 415) },
      },
    },
    async (request, reply) => {
      const { tenantId } = request.params;
      const ref = { tenantId, aggregateType: "tenant" as const, aggregateId: tenantId };
      const context = commandContext(request, now());
      const { lastSeq, state } = await store.handle(ref, tenantDecider, { type: "SetLimits", ...request.body }, { causeId: `${tenantId}.limits.${newUlid()}`, context });
      if (state.status !== "active") throw E.notFound(`tenant ${tenantId} not found`);
      request.log.info({ tenantId, seq: lastSeq }, "tenant limits set");
      await view.waitFor(lastSeq, VIEW_WAIT_MS);
      return withSeq(reply, lastSeq).send({ tenantId, limits: state.limits });
    },
  );

  app.delete(
    "/v1/tenants/:tenantId/api-keys/:keyId",
    {
      config: admin,
      schema: { tags: ["tenants"], summary: "Revoke an API key", params: ApiKeyParams, response: { 204: NoContent, ...errorResponses(401, 403, 404) } },
    },
    async (request, reply) => {
      const { tenantId, keyId } = request.params;
      const ref = { tenantId, aggregateType: "apikey" as const, aggregateId: keyId };
      const context = commandContext(request, now());
      // Revoked at most once, so the cause is the key itself: a retried revoke never writes twice.
      const { lastSeq } = await store.handle(ref, apiKeyDecider, { type: "RevokeApiKey" }, { causeId: `${keyId}.revoke`, context });
      request.log.info({ tenantId, keyId, seq: lastSeq }, "api key revoked");
      // This process refuses the key from now on.
      await view.waitFor(lastSeq, VIEW_WAIT_MS);
      return withSeq(reply, lastSeq).status(204).send();
    },
  );
};
