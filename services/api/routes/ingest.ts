import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { newId } from "../../shared/ids.js";
import { IngestIn, IngestOut } from "../../../contracts/http/ingest.js";
import { messageDecider } from "../../../domain/message/message.js";
import { ConcurrencyError } from "../../../streams/event-store.js";
import { tenantOf } from "../auth.js";
import type { ApiDeps } from "../deps.js";
import type { EventIdClaims } from "../event-ids.js";
import * as E from "../errors.js";
import { commandContext, withSeq } from "../plumbing.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

type Deps = Pick<ApiDeps, "store"> & { eventIds: EventIdClaims; now: () => Date };

/**
 * `POST /v1/webhooks/ingest`, the hot path: no load, since a new message id has no history; the
 * 202 goes out only after JetStream acked the append.
 */
export const ingestRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, eventIds, now }) => {
  app.post("/v1/webhooks/ingest", {
    config: { scope: "ingest", tenantScoped: true },
    schema: {
      tags: ["ingest"], summary: "Accept an event for delivery", body: IngestIn,
      response: { 202: IngestOut, ...errorResponses(...TENANT_ERRORS, 404, 409, 413, 415) },
    },
  }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const { eventType, payload, eventId } = request.body;
    const claim = eventId === undefined ? null : await eventIds.claim(tenantId, eventId, newId("message"));
    const messageId = claim?.messageId ?? newId("message");
    const context = commandContext(request, now());
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
