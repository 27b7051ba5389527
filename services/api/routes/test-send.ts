import { randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { DEFAULT_DELIVERY_POLICY } from "../../../contracts/common.js";
import { TestSendIn, TestSendOut } from "../../../contracts/http/test-send.js";
import type { EventData } from "../../../contracts/events.js";
import { effectiveDeliveryPolicy, endpointDecider, signingSecrets } from "../../../domain/endpoint/endpoint.js";
import { tenantDecider } from "../../../domain/tenant/tenant.js";
import { generateSecret } from "../../../domain/signing/standard-webhooks.js";
import { createHttpSender, signedRequest, type HttpSender, type SendResult } from "../../outbound/index.js";
import type { Config } from "../../shared/config.js";
import { newUlid } from "../../shared/ids.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import * as E from "../errors.js";
import { commandContext, withSeq } from "../plumbing.js";
import type { SharedBuckets } from "../../shared/shared-buckets.js";
import { errorResponses, quotaOf, TENANT_ERRORS } from "./shared.js";

type Deps = Pick<ApiDeps, "view" | "secretBox" | "store"> & {
  /** The SSRF guard's settings; `allowedTargetCidrs` is optional until every caller passes it. */
  config: Pick<Config, "allowPrivateTargets"> & Partial<Pick<Config, "allowedTargetCidrs" | "quotas">>;
  /** Each tenant's test sends a minute (its `testSendsPerMinute`, else the platform's), shared by every api process. */
  testSends: SharedBuckets;
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
 * its SSRF guard, signed like a delivery with `webhook-id` `msg_test_…`. No delivery is stored; the
 * send itself is audited (`endpoint.test_sent` or `tenant.test_sent`, secret-free) once it is over.
 */
export const testSendRoutes: FastifyPluginAsyncZod<Deps> = async (app, { view, secretBox, store, config, sender: given, now, testSends }) => {
  const sender = given ?? createHttpSender({ targetPolicy: { allowPrivate: config.allowPrivateTargets, allowedCidrs: config.allowedTargetCidrs ?? [] } });
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

  /** One test send of the tenant's allowance (a burst of a minute's worth, refilled evenly); past it, 429. */
  async function spendTestSend(tenantId: string): Promise<void> {
    const perMinute = quotaOf(view, tenantId, "testSendsPerMinute", config.quotas);
    const taken = await testSends.take(tenantId, { capacity: perMinute, refillPerSecond: perMinute / 60 });
    if (!taken.allowed) {
      throw E.quotaRateLimited("test_sends", `test sends are limited to ${perMinute} a minute per tenant`, perMinute, Math.max(1, Math.ceil(taken.waitMs / 1_000)));
    }
  }

  app.post(
    "/v1/webhooks/test",
    {
      config: { scope: "webhooks:write", tenantScoped: true },
      schema: {
        tags: ["registry"],
        summary: "Send one real, signed test request to an endpoint or a URL (audited; no delivery is recorded)",
        body: TestSendIn,
        response: { 200: TestSendOut, ...errorResponses(...TENANT_ERRORS, 404, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const tenantId = tenantOf(request);
      const { eventType, payload } = request.body;
      const target = targetOf(tenantId, request.body);
      await spendTestSend(tenantId);
      const at = now();
      const messageId = `msg_test_${newUlid()}`;
      const scheduled = { messageId, eventType, payload, messageReceivedAt: at.toISOString() };
      const outbound = signedRequest({ url: target.url, secrets: target.secrets, scheduled, now: at });
      const result = await sender.send({ ...outbound, timeoutMs: target.timeoutMs, withResponseHeaders: true });
      const lastSeq = await audit(request, tenantId, target, { webhookId: messageId, eventType, ...outcomeOf(result) });
      request.log.info(
        {
          tenantId,
          endpointId: target.endpointId,
          webhookId: messageId,
          eventType,
          statusCode: result.statusCode,
          networkError: result.networkError,
          latencyMs: result.latencyMs,
          seq: lastSeq,
        },
        "test send",
      );
      return withSeq(reply, lastSeq).status(200).send(render(result, target.oneOffSecret));
    },
  );

  /** Records the send: on the endpoint it went to, or on the tenant (with the URL, secret-free) for a bare URL. */
  async function audit(request: FastifyRequest, tenantId: string, target: Target, sent: Omit<EventData<"endpoint.test_sent">, "url">): Promise<number> {
    const options = { causeId: sent.webhookId, context: commandContext(request, now()) };
    if (target.endpointId !== undefined) {
      const ref = { tenantId, aggregateType: "endpoint" as const, aggregateId: target.endpointId };
      return (await store.handle(ref, endpointDecider, { type: "RecordTestSend", ...sent }, options)).lastSeq;
    }
    const ref = { tenantId, aggregateType: "tenant" as const, aggregateId: tenantId };
    return (await store.handle(ref, tenantDecider, { type: "RecordTestSend", ...sent, url: auditedUrl(target.url) }, options)).lastSeq;
  }
};

function outcomeOf(result: SendResult): Pick<EventData<"endpoint.test_sent">, "status" | "error" | "latencyMs"> {
  return {
    latencyMs: result.latencyMs,
    ...(result.statusCode === undefined ? {} : { status: result.statusCode }),
    ...(result.networkError ? { error: result.networkError } : {}),
  };
}

/** What the audit keeps of a target URL: no credentials, query or fragment (where tokens hide). */
function auditedUrl(text: string): string {
  const url = new URL(text);
  return `${url.protocol}//${url.host}${url.pathname}`;
}

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
