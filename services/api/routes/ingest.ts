import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { newId } from "../../shared/ids.js";
import { ingestOutcome, type Metrics } from "../../shared/metrics.js";
import { traceFields } from "../../shared/logger.js";
import { headerValue, NOOP_TRACING, type TraceSpan } from "../../shared/tracing.js";
import { IngestIn, IngestOut } from "../../../contracts/http/ingest.js";
import { messageDecider } from "../../../domain/message/message.js";
import { ConcurrencyError } from "../../../streams/event-store.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import type { EventIdClaims } from "../event-ids.js";
import * as E from "../errors.js";
import { commandContext, withSeq } from "../plumbing.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

type Deps = Pick<ApiDeps, "store" | "tracing"> & { eventIds: EventIdClaims; now: () => Date; metrics: Metrics };

/**
 * `POST /v1/webhooks/ingest`, the hot path: no load, since a new message id has no history; the
 * 202 goes out only after JetStream acked the append.
 */
export const ingestRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, eventIds, now, metrics, tracing = NOOP_TRACING }) => {
  // With tracing on, a server span per ingest request (continuing the client's `traceparent`, if it
  // sent one), from this scope's onRequest to the response; the message carries the span's context,
  // and every line the request logs (its `request completed` line included) the span's `traceId`.
  // Off, the hooks are not even registered.
  const spans = new WeakMap<object, TraceSpan>();
  if (tracing.enabled) {
    app.addHook("onRequest", async (request) => {
      const attributes = { "http.request.method": "POST", "http.route": "/v1/webhooks/ingest" };
      const span = tracing.startSpan("POST /v1/webhooks/ingest", { kind: "server", parent: headerValue(request.headers.traceparent), attributes });
      spans.set(request, span);
      if (span.traceparent) request.log = request.log.child(traceFields(span));
    });
    app.addHook("onResponse", async (request, reply) => {
      const span = spans.get(request);
      if (!span) return;
      span.setAttributes({ "http.response.status_code": reply.statusCode });
      if (reply.statusCode >= 500) span.fail(`HTTP ${reply.statusCode}`);
      span.end();
    });
  }
  app.post("/v1/webhooks/ingest", {
    config: { scope: "ingest", tenantScoped: true, ingressLimited: true },
    // Every answer counts, refusals before the handler (auth, validation, size) included.
    onResponse: async (_request, reply) => metrics.ingestRequests.inc({ outcome: ingestOutcome(reply.statusCode) }),
    schema: {
      tags: ["ingest"], summary: "Accept an event for delivery", body: IngestIn,
      response: { 202: IngestOut, ...errorResponses(...TENANT_ERRORS, 404, 409, 413, 415, 429) },
    },
  }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const { eventType, payload, eventId } = request.body;
    const claim = eventId === undefined ? null : await eventIds.claim(tenantId, eventId, newId("message"));
    const messageId = claim?.messageId ?? newId("message");
    const context = commandContext(request, now());
    if (tracing.enabled) {
      const span = spans.get(request);
      span?.setAttributes({ "zen.tenant_id": tenantId, "zen.message_id": messageId });
      if (span?.traceparent) context.traceparent = span.traceparent;
    }
    const ref = { tenantId, aggregateType: "message" as const, aggregateId: messageId };
    const events = messageDecider.decide({ type: "ReceiveMessage", eventType, payload, eventId }, messageDecider.initialState());
    try {
      // A new message's subject is empty: version 0 is the whole check, no load needed.
      const { lastSeq } = await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: messageId, context });
      request.log.info({ tenantId, messageId, eventType, seq: lastSeq }, "message accepted");
      return withSeq(reply, lastSeq).status(202).send({ messageId, status: "accepted" as const });
    } catch (error) {
      // The eventId's message is already stored (by an earlier or a concurrent request).
      if (claim && error instanceof ConcurrencyError) throw E.duplicateEvent(messageId);
      throw error;
    }
  });
};
