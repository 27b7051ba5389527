import { randomBytes } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { NoContent } from "../../../contracts/http/common.js";
import { SourceCreatedOut, SourceIn, SourceOut, SourceParams, SourcePatch } from "../../../contracts/http/sources.js";
import { sourceDecider, type SourceCommand } from "../../../domain/source/source.js";
import { measureSecret } from "../../../domain/signing/secret-strength.js";
import { generateSecret } from "../../../domain/signing/standard-webhooks.js";
import { newId, newUlid } from "../../shared/ids.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import { commandContext, withSeq } from "../plumbing.js";
import { renderSource, renderSourceView } from "./source-out.js";
import { assertUnderQuota, errorResponses, TENANT_ERRORS, VIEW_WAIT_MS } from "./shared.js";

type Deps = Pick<ApiDeps, "store" | "view" | "secretBox" | "config"> & { now: () => Date };
const write = { scope: "webhooks:write" as const, tenantScoped: true, idempotency: "required" as const };
/** A mutation whose answer shows a secret: its replay goes to the same key only. */
const writeShowingSecret = { ...write, answersSecret: true };
const tags = ["sources"];

/** Inbound source mutations: create, update, delete. Reads are in `sources-reads.ts`. */
export const sourceRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, view, secretBox, config, now }) => {
  /** Runs a command on one source, then renders it as the registry view shows it afterwards. */
  async function run(request: Parameters<typeof tenantOf>[0], id: string, command: SourceCommand, causeId: string) {
    const tenantId = tenantOf(request);
    const context = commandContext(request, now());
    const ref = { tenantId, aggregateType: "source" as const, aggregateId: id };
    const result = await store.handle(ref, sourceDecider, command, { causeId, context });
    request.log.info({ tenantId, sourceId: id, command: command.type, seq: result.lastSeq }, "source command accepted");
    await view.waitFor(result.lastSeq, VIEW_WAIT_MS);
    const seen = view.source(tenantId, id);
    const at = context.now.toISOString();
    // The view is slow: answer from the command's own result rather than fail an accepted change.
    const body = seen ? renderSourceView(seen) : result.state.status === "absent" ? null : renderSource(tenantId, id, result.state, at, at);
    return { lastSeq: result.lastSeq, body };
  }

  app.post(
    "/v1/webhooks/sources",
    {
      config: writeShowingSecret,
      schema: {
        tags,
        summary: "Create an inbound source (its secret is shown once)",
        body: SourceIn,
        response: { 201: SourceCreatedOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const { secret: given, ...fields } = request.body;
      assertUnderQuota(view, tenantOf(request), "sources", config.quotas);
      const id = newId("source");
      // Provider schemes bring the provider's secret (the contract requires it); for the rest we choose one.
      const secret = given ?? generateSecret(randomBytes(32));
      const command = { type: "CreateSource" as const, sourceId: id, ...fields, secret: secretBox.encrypt(secret), secretKeyBytes: measureSecret(secret) };
      const { lastSeq, body } = await run(request, id, command, id);
      return withSeq(reply, lastSeq)
        .status(201)
        .send({ ...body!, secret });
    },
  );

  app.patch(
    "/v1/webhooks/sources/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "Update an inbound source (a new secret is never shown back)",
        params: SourceParams,
        body: SourcePatch,
        response: { 200: SourceOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      const { secret, ...changes } = request.body;
      const sealed = secret === undefined ? {} : { secret: secretBox.encrypt(secret) };
      const measured = secret === undefined ? {} : { secretKeyBytes: measureSecret(secret) };
      const { lastSeq, body } = await run(request, id, { type: "UpdateSource", changes: { ...changes, ...sealed }, ...measured }, `${id}.${newUlid()}`);
      return withSeq(reply, lastSeq).status(200).send(body!);
    },
  );

  app.delete(
    "/v1/webhooks/sources/:id",
    {
      config: write,
      schema: { tags, summary: "Delete an inbound source", params: SourceParams, response: { 204: NoContent, ...errorResponses(...TENANT_ERRORS, 404) } },
    },
    async (request, reply) => {
      const id = request.params.id;
      // Deleted at most once, so the cause is the source itself.
      const { lastSeq } = await run(request, id, { type: "DeleteSource" }, `${id}.delete`);
      return withSeq(reply, lastSeq).status(204).send();
    },
  );
};
