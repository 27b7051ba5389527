import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { newId } from "../../shared/ids.js";
import { ingestOutcome, type Metrics } from "../../shared/metrics.js";
import { NOOP_TRACING } from "../../shared/tracing.js";
import { IDEMPOTENT_REPLAYED_HEADER } from "../../../contracts/http/replay.js";
import { requestSpans } from "../request-span.js";
import { IngestIn, IngestOut } from "../../../contracts/http/ingest.js";
import { messageDecider } from "../../../domain/message/message.js";
import { ConcurrencyError } from "../../../streams/event-store.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import type { EventIdClaims } from "../event-ids.js";
import * as E from "../errors.js";
import { commandContext, withSeq } from "../plumbing.js";
import type { StreamRoom } from "../stream-room.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

type Deps = Pick<ApiDeps, "store" | "tracing"> & { eventIds: EventIdClaims; now: () => Date; metrics: Metrics; room: StreamRoom };

/**
 * `POST /v1/webhooks/ingest`, the hot path: no load, since a new message id has no history; the
 * 202 goes out only after JetStream acked the append.
 */
export const ingestRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, eventIds, now, metrics, room, tracing = NOOP_TRACING }) => {
  // With tracing on, a server span per ingest request; the message carries the span's context.
  const spans = requestSpans(app, tracing);
  /** Requests answered 409 because their `eventId`'s message is stored: the duplicates. */
  const duplicates = new WeakSet<object>();
  app.post(
    "/v1/webhooks/ingest",
    {
      config: { scope: "ingest", tenantScoped: true, ingressLimited: true },
      // Every answer counts, refusals before the handler (auth, validation, size) included; by what
      // happened: a replay of a kept response is no new acceptance, an Idempotency-Key 409 no duplicate.
      onResponse: async (request, reply) => {
        const replayed = reply.getHeader(IDEMPOTENT_REPLAYED_HEADER) === "true";
        metrics.ingestRequests.inc({ outcome: ingestOutcome(reply.statusCode, { replayed, duplicateEvent: duplicates.has(request) }) });
      },
      schema: {
        tags: ["ingest"],
        summary: "Accept an event for delivery",
        body: IngestIn,
        response: { 202: IngestOut, ...errorResponses(...TENANT_ERRORS, 404, 409, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const tenantId = tenantOf(request);
      await room.assertRoom();
      const { eventType, payload, eventId } = request.body;
      const claim = eventId === undefined ? null : await eventIds.claim(tenantId, eventId, newId("message"));
      const messageId = claim?.messageId ?? newId("message");
      const context = commandContext(request, now());
      spans.enter(request, context, { "zen.tenant_id": tenantId, "zen.message_id": messageId });
      const ref = { tenantId, aggregateType: "message" as const, aggregateId: messageId };
      const events = messageDecider.decide({ type: "ReceiveMessage", eventType, payload, eventId }, messageDecider.initialState());
      try {
        // A new message's subject is empty: version 0 is the whole check, no load needed.
        const { lastSeq } = await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: messageId, context });
        request.log.info({ tenantId, messageId, eventType, seq: lastSeq }, "message accepted");
        return withSeq(reply, lastSeq)
          .status(202)
          .send({ messageId, status: "accepted" as const });
      } catch (error) {
        // The eventId's message is already stored (by an earlier or a concurrent request).
        if (claim && error instanceof ConcurrencyError) {
          duplicates.add(request);
          throw E.duplicateEvent(messageId);
        }
        throw error;
      }
    },
  );
};
