import { randomBytes } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { DEFAULT_DELIVERY_POLICY } from "../../../contracts/common.js";
import { TestSendIn, TestSendOut } from "../../../contracts/http/test-send.js";
import { effectiveDeliveryPolicy, signingSecrets } from "../../../domain/endpoint/endpoint.js";
import { generateSecret } from "../../../domain/signing/standard-webhooks.js";
import { createHttpSender, type HttpSender, type SendResult } from "../../dispatcher/http-sender.js";
import { signedRequest } from "../../dispatcher/outbound.js";
import type { Config } from "../../shared/config.js";
import { newUlid } from "../../shared/ids.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import * as E from "../errors.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

type Deps = Pick<ApiDeps, "view" | "secretBox"> & {
  /** The SSRF guard's settings; `allowedTargetCidrs` is optional until every caller passes it. */
  config: Pick<Config, "allowPrivateTargets"> & Partial<Pick<Config, "allowedTargetCidrs">>;
  /** The client deliveries use; when absent, one is made with the same guard and closed with the app. */
  sender?: HttpSender;
  now: () => Date;
};

/** What a receiver is sent and which secrets sign it. */
interface Target {
  url: string;
  secrets: string[];
  timeoutMs: number;
  /** Returned to the caller only when it was made up for this request. */
  oneOffSecret?: string;
  endpointId?: string;
}

/**
 * `POST /v1/webhooks/test` (API.md "Test send"): one real request through the delivery client and
 * its SSRF guard, signed like a delivery with `webhook-id` `msg_test_…`. Nothing is stored.
 */
export const testSendRoutes: FastifyPluginAsyncZod<Deps> = async (app, { view, secretBox, config, sender: given, now }) => {
  const sender =
    given ??
    createHttpSender({ targetPolicy: { allowPrivate: config.allowPrivateTargets, allowedCidrs: config.allowedTargetCidrs ?? [] } });
  if (!given) app.addHook("onClose", () => sender.close());

  function targetOf(tenantId: string, body: TestSendIn): Target {
    if (body.url !== undefined) {
      assertHttpUrl(body.url);
      const secret = generateSecret(randomBytes(32));
      return { url: body.url, secrets: [secret], timeoutMs: DEFAULT_DELIVERY_POLICY.timeoutMs, oneOffSecret: secret };
    }
    const endpoint = view.endpoint(tenantId, body.endpointId!);
    if (!endpoint || endpoint.state.status === "deleted") throw E.notFound("no such endpoint");
    // Signed like its deliveries: both secrets while a rotation's grace lasts.
    const secrets = signingSecrets(endpoint.state, now()).map((sealed) => secretBox.decrypt(sealed));
    return { url: endpoint.state.url, secrets, timeoutMs: effectiveDeliveryPolicy(endpoint.state).timeoutMs, endpointId: endpoint.endpointId };
  }

  app.post("/v1/webhooks/test", {
    config: { scope: "webhooks:write", tenantScoped: true },
    schema: {
      tags: ["registry"], summary: "Send one real, signed test request to an endpoint or a URL (recorded nowhere)", body: TestSendIn,
      response: { 200: TestSendOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const { eventType, payload } = request.body;
    const target = targetOf(tenantId, request.body);
    const at = now();
    const messageId = `msg_test_${newUlid()}`;
    const scheduled = { messageId, eventType, payload, messageReceivedAt: at.toISOString() };
    const outbound = signedRequest({ url: target.url, secrets: target.secrets, scheduled, now: at });
    const result = await sender.send({ ...outbound, timeoutMs: target.timeoutMs });
    request.log.info(
      { tenantId, endpointId: target.endpointId, webhookId: messageId, eventType, statusCode: result.statusCode, networkError: result.networkError, latencyMs: result.latencyMs },
      "test send",
    );
    return reply.status(200).send(render(result, target.oneOffSecret));
  });
};

function render(result: SendResult, secret: string | undefined): TestSendOut {
  const out: TestSendOut = { ok: result.statusCode !== undefined && result.statusCode >= 200 && result.statusCode < 300, latencyMs: result.latencyMs };
  if (result.statusCode !== undefined) out.status = result.statusCode;
  if (result.responseHeaders) out.responseHeaders = result.responseHeaders;
  if (result.responseSnippet !== undefined) out.responseBodyPreview = result.responseSnippet;
  if (result.networkError) out.error = result.networkError;
  if (secret !== undefined) out.secret = secret;
  return out;
}

/** The checks registration makes of a URL (the endpoint decider's), before anything is sent. */
function assertHttpUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw E.unprocessable("url must be an absolute http or https URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw E.unprocessable("url must be an absolute http or https URL");
  if (url.username || url.password) throw E.unprocessable("url must not contain credentials");
}
