import { randomBytes } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { newId, newUlid } from "../../shared/ids.js";
import { NoContent } from "../../../contracts/http/common.js";
import { EndpointCreatedOut, EndpointIn, EndpointOut, EndpointParams, EndpointPatch, RotateSecretIn, RotateSecretOut } from "../../../contracts/http/endpoints.js";
import { endpointDecider, type EndpointCommand, type EndpointState } from "../../../domain/endpoint/endpoint.js";
import { measureSecret } from "../../../domain/signing/secret-strength.js";
import { generateSecret } from "../../../domain/signing/standard-webhooks.js";
import type { EventData } from "../../../contracts/events.js";
import type { AppendResult } from "../../../streams/event-store.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import { commandContext, withSeq } from "../plumbing.js";
import { assertPublicTarget } from "../target-guard.js";
import { renderEndpoint, renderView } from "./endpoint-out.js";
import { assertUnderQuota, errorResponses, TENANT_ERRORS, VIEW_WAIT_MS } from "./shared.js";

type Deps = Pick<ApiDeps, "store" | "view" | "secretBox" | "config"> & { now: () => Date };
/** Registry mutations require an Idempotency-Key (API.md "Conventions"). */
const write = { scope: "webhooks:write" as const, tenantScoped: true, idempotency: "required" as const };
/** A mutation whose answer shows a secret: its replay goes to the same key only. */
const writeShowingSecret = { ...write, answersSecret: true };
const tags = ["registry"];

/** Registry mutations: create, update, delete, rotate the secret. Reads are in `registry-reads.ts`. */
export const registryRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, view, secretBox, config, now }) => {
  /** Runs a command on one endpoint, then renders it as the registry view shows it afterwards. */
  async function run(request: Parameters<typeof tenantOf>[0], id: string, command: EndpointCommand, causeId: string) {
    const tenantId = tenantOf(request);
    const context = commandContext(request, now());
    const ref = { tenantId, aggregateType: "endpoint" as const, aggregateId: id };
    const result = await store.handle(ref, endpointDecider, command, { causeId, context });
    request.log.info({ tenantId, endpointId: id, command: command.type, seq: result.lastSeq }, "endpoint command accepted");
    return { ...result, body: await rendered(tenantId, id, result, context.now) };
  }

  async function rendered(tenantId: string, id: string, result: AppendResult & { state: EndpointState }, at: Date) {
    await view.waitFor(result.lastSeq, VIEW_WAIT_MS);
    const seen = view.endpoint(tenantId, id);
    if (seen) return renderView(seen);
    // The view is slow: answer from the command's own result rather than fail an accepted change.
    if (result.state.status === "absent") return null;
    return renderEndpoint(id, result.state, at.toISOString(), at.toISOString());
  }

  app.post(
    "/v1/webhooks/registry",
    {
      config: writeShowingSecret,
      schema: {
        tags,
        summary: "Register an endpoint (its secret is shown once)",
        body: EndpointIn,
        response: { 201: EndpointCreatedOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const { secret: given, ...fields } = request.body;
      assertPublicTarget(fields.url, config.allowPrivateTargets, config.allowedTargetCidrs);
      assertUnderQuota(view, tenantOf(request), "endpoints", config.quotas);
      const id = newId("endpoint");
      const secret = given ?? generateSecret(randomBytes(32));
      const command = { type: "RegisterEndpoint" as const, endpointId: id, ...fields, secret: secretBox.encrypt(secret), secretKeyBytes: measureSecret(secret) };
      const { lastSeq, body } = await run(request, id, command, id);
      return withSeq(reply, lastSeq)
        .status(201)
        .send({ ...body!, secret });
    },
  );

  app.patch(
    "/v1/webhooks/registry/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "Update an endpoint (not its secret)",
        params: EndpointParams,
        body: EndpointPatch,
        response: { 200: EndpointOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      if (request.body.url !== undefined) assertPublicTarget(request.body.url, config.allowPrivateTargets, config.allowedTargetCidrs);
      const id = request.params.id;
      const { lastSeq, body } = await run(request, id, { type: "UpdateEndpoint", changes: request.body }, `${id}.${newUlid()}`);
      return withSeq(reply, lastSeq).status(200).send(body!);
    },
  );

  app.delete(
    "/v1/webhooks/registry/:id",
    {
      config: write,
      schema: { tags, summary: "Delete an endpoint", params: EndpointParams, response: { 204: NoContent, ...errorResponses(...TENANT_ERRORS, 404) } },
    },
    async (request, reply) => {
      const id = request.params.id;
      // Deleted at most once, so the cause is the endpoint itself.
      const { lastSeq } = await run(request, id, { type: "DeleteEndpoint" }, `${id}.delete`);
      return withSeq(reply, lastSeq).status(204).send();
    },
  );

  app.post(
    "/v1/webhooks/registry/:id/rotate-secret",
    {
      config: writeShowingSecret,
      schema: {
        tags,
        summary: "Rotate an endpoint's signing secret (the new one is shown once; the old one keeps signing during the grace)",
        params: EndpointParams,
        body: RotateSecretIn.nullish().describe("May be omitted: the default grace applies"),
        response: { 200: RotateSecretOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      const { graceSeconds } = RotateSecretIn.parse(request.body ?? {});
      const secret = generateSecret(randomBytes(32));
      const command = { type: "RotateSecret" as const, secret: secretBox.encrypt(secret), secretKeyBytes: measureSecret(secret), graceSeconds, now: now().toISOString() };
      const { lastSeq, envelopes } = await run(request, id, command, `${id}.rotate.${newUlid()}`);
      // The replaced secret's expiry as the event recorded it (the decider computed it from `now`).
      const recorded = envelopes.find((e) => e.type === "endpoint.secret_rotated");
      if (!recorded) throw new Error(`rotation of ${id} recorded no endpoint.secret_rotated event`);
      const { previousExpiresAt } = recorded.data as EventData<"endpoint.secret_rotated">;
      return withSeq(reply, lastSeq).status(200).send({ secret, previousExpiresAt });
    },
  );
};
