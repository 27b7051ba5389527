import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ListOf } from "../../../contracts/http/common.js";
import { ParkedOut, ParkedParams, ParkedQuery, ParkedReplayOut } from "../../../contracts/http/parked.js";
import { parkedDecider } from "../../../domain/parked/parked.js";
import type { ApiDeps } from "../deps.js";
import * as E from "../errors.js";
import { newUlid } from "../../shared/ids.js";
import { commandContext, minSeqHook, withSeq } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import { errorResponses } from "./shared.js";

type Deps = Pick<ApiDeps, "store"> & { now: () => Date; readModels: Pick<ReadModels, "listParked" | "getParked" | "waitForSeq"> };
const admin = { scope: "admin" as const };
const tags = ["parked"];

/**
 * Operator routes over parked messages: what the reactors gave up on, across tenants, and a replay
 * that hands one back to its reactor (once whatever made it fail is fixed).
 */
export const parkedRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, now, readModels }) => {
  app.addHook("preHandler", minSeqHook(readModels));

  app.get(
    "/v1/parked",
    {
      config: admin,
      schema: {
        tags,
        summary: "List parked messages of every tenant, newest first",
        querystring: ParkedQuery,
        response: { 200: ListOf(ParkedOut), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => readModels.listParked(request.query),
  );

  app.get(
    "/v1/parked/:parkedId",
    {
      config: admin,
      schema: { tags, summary: "One parked message", params: ParkedParams, response: { 200: ParkedOut, ...errorResponses(400, 401, 403, 404) } },
    },
    async (request) => {
      const row = await readModels.getParked(request.params.parkedId);
      if (!row) throw E.notFound(`parked message ${request.params.parkedId} not found`);
      return row;
    },
  );

  app.post(
    "/v1/parked/:parkedId/replay",
    {
      config: admin,
      schema: {
        tags,
        summary: "Hand a parked message back to its reactor (after fixing what made it fail)",
        params: ParkedParams,
        response: { 202: ParkedReplayOut, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { parkedId } = request.params;
      const row = await readModels.getParked(parkedId);
      if (!row) throw E.notFound(`parked message ${parkedId} not found`);
      const ref = { tenantId: row.tenantId, aggregateType: "parked" as const, aggregateId: parkedId };
      const context = commandContext(request, now());
      const { lastSeq } = await store.handle(ref, parkedDecider, { type: "RequestReplay" }, { causeId: `${parkedId}:replay:${newUlid()}`, context });
      request.log.info({ parkedId, tenantId: row.tenantId, seq: lastSeq }, "parked message replay requested");
      return withSeq(reply, lastSeq)
        .status(202)
        .send({ id: parkedId, status: "replaying" as const });
    },
  );
};
