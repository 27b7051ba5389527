import type { FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ID_PREFIX, prefixedId, type TokenBucket } from "../../../contracts/common.js";
import type { SignatureRejectionReason, SourceScheme } from "../../../contracts/inbound.js";
import { IngestOut } from "../../../contracts/http/ingest.js";
import { InboundParams } from "../../../contracts/http/sources.js";
import { describeInbound, slackChallenge, type InboundMessage } from "../../../domain/inbound/describe.js";
import { verifyInbound } from "../../../domain/inbound/verify.js";
import { messageDecider } from "../../../domain/message/message.js";
import { sourceDecider } from "../../../domain/source/source.js";
import { ConcurrencyError, type AggregateRef, type CommandContext } from "../../../streams/event-store.js";
import { newId, newUlid } from "../../shared/ids.js";
import type { Metrics } from "../../shared/metrics.js";
import { createLocalBuckets, type SharedBuckets } from "../../shared/shared-buckets.js";
import { NOOP_TRACING } from "../../shared/tracing.js";
import type { ApiDeps } from "../deps.js";
import type { EventIdClaims } from "../event-ids.js";
import * as E from "../errors.js";
import type { IngressLimiter } from "../ingress-limit.js";
import { ingressBucketOf, spendIngress } from "../ingress-plugin.js";
import { payloadLimitsOf, spendPayloadBytes, type PayloadLimits } from "../payload-quota.js";
import type { StreamRoom } from "../stream-room.js";
import { withSeq } from "../plumbing.js";
import { requestSpans } from "../request-span.js";
import { createStoreReadGuard } from "../store-read-guard.js";
import { errorResponses } from "./shared.js";

/** How long a provider's delivery id is remembered: a replay within it is refused (beyond the timestamp tolerance). */
export const INBOUND_REPLAY_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * How long a verified signature is remembered. GitHub, Shopify and generic sources without a signed
 * timestamp sign the body only: a captured request stays valid forever, and this is how long its
 * replay (under any delivery id) is refused.
 */
export const INBOUND_SIGNATURE_TTL_MS = 30 * 24 * 3600 * 1000;

/** Refusals recorded as `signature.rejected` events, per source and api process. */
const RECORDED_REJECTIONS: TokenBucket = { capacity: 10, refillPerSecond: 1 };

/**
 * Requests that do not verify, or name no live source, per client address and api process: past
 * this they are answered 429 instead, without a refusal event or a tenant token.
 */
export const UNVERIFIED_PER_ADDRESS: TokenBucket = { capacity: 20, refillPerSecond: 2 };
/** Client addresses whose unverified requests are counted at once, per api process (the least recent forgotten). */
const MAX_ADDRESSES = 10_000;

type Deps = Pick<ApiDeps, "store" | "view" | "secretBox" | "tracing"> & {
  deliveries: EventIdClaims;
  signatures: EventIdClaims;
  now: () => Date;
  metrics: Metrics;
  /** The tenants' ingress buckets: a verified request spends one token of the tenant's inbound bucket. */
  ingress: IngressLimiter;
  ingressDefaults: TokenBucket;
  unverifiedPerAddress?: TokenBucket;
  /** The tenants' payload-bytes buckets: a verified request spends its body's bytes (with API ingest). */
  payloadBytes: SharedBuckets;
  payloadDefaults: PayloadLimits;
  /** Refuses new messages once the event stream holds its cap. */
  room: StreamRoom;
};
type Rejection = { reason: SignatureRejectionReason; deliveryId?: string };
const TenantId = prefixedId("tenant");
const SourceId = prefixedId("source");

/**
 * `POST /v1/inbound/{tenantId}/{sourceId}`: a provider's webhook, authenticated by its signature
 * over the exact bytes received, accepted once per provider delivery id and once per signature, then stored as a message
 * exactly like ingest (202 only after JetStream acked it). Refusals are 401 and a `signature.rejected`
 * event on the source.
 */
export const inboundRoutes: FastifyPluginAsyncZod<Deps> = async (
  app,
  {
    store,
    view,
    secretBox,
    deliveries,
    signatures,
    now,
    metrics,
    tracing = NOOP_TRACING,
    ingress,
    ingressDefaults,
    unverifiedPerAddress = UNVERIFIED_PER_ADDRESS,
    payloadBytes,
    payloadDefaults,
    room,
  },
) => {
  // This scope only: every media type arrives as the raw bytes, for the signature to cover them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  // With tracing on, a server span per request, like ingest's: the message (or the refusal) it
  // stores carries the span's context, so a provider's webhook is one trace to its deliveries.
  const spans = requestSpans(app, tracing);

  // Anyone may call this route: a source the view has not seen is looked for in the store only
  // when its id is recent, at most once per 30 s while it is missing, and within a few reads a second.
  const storeReads = createStoreReadGuard();

  // Anyone may call this route, so only a verified request spends the tenant's inbound bucket:
  // unknown sources and bad signatures spend a bucket of the caller's address instead, and a flood
  // of them cannot shut the tenant's real webhooks out.
  const unverified = createLocalBuckets(MAX_ADDRESSES);
  async function spendUnverified(request: FastifyRequest): Promise<void> {
    const taken = await unverified.take(request.ip, unverifiedPerAddress);
    if (!taken.allowed) throw E.rateLimited(Math.ceil(taken.waitMs / 1_000), {});
  }

  /** The source if it exists and is live; everything else is the same bare 404 (or 429 past the address's budget). */
  async function liveSource(request: FastifyRequest, tenantId: string, sourceId: string) {
    try {
      return await lookUpSource(tenantId, sourceId);
    } catch (error) {
      if (error instanceof E.ApiError && error.status === 404) await spendUnverified(request);
      throw error;
    }
  }

  async function lookUpSource(tenantId: string, sourceId: string) {
    if (!TenantId.safeParse(tenantId).success || !SourceId.safeParse(sourceId).success) throw E.notFound();
    const ref = { tenantId, aggregateType: "source" as const, aggregateId: sourceId };
    const seen = view.source(tenantId, sourceId)?.state;
    if (seen) {
      if (seen.status !== "active") throw E.notFound();
      return { ref, state: seen };
    }
    // Created a moment ago through another api process: the store has it before this view does.
    const key = `${tenantId}/${sourceId}`;
    if (!storeReads.mayRead(sourceId.slice(ID_PREFIX.source.length), key)) throw E.notFound();
    const { state } = await store.load(ref, sourceDecider, { fresh: true });
    if (state.status !== "active") {
      storeReads.rememberMiss(key);
      throw E.notFound();
    }
    return { ref, state };
  }

  // Each refusal is evidence, but a flood of forged requests must not grow a source's history
  // without bound: at most a burst of 10, then one a second, per source and process, is recorded as
  // an event; every refusal is counted in the metric and logged.
  // (Only live sources get here, so the buckets are as many as the sources.)
  const recordable = createLocalBuckets();
  const mayRecord = async (ref: AggregateRef) => (await recordable.take(`${ref.tenantId}/${ref.aggregateId}`, RECORDED_REJECTIONS)).allowed;

  /**
   * Stores the message once per delivery id and once per signature; null for a replay: a delivery
   * already stored, or a signature already bound to another delivery (where the id is not signed, a
   * captured request resent under a fresh id).
   */
  async function accept(
    tenantId: string,
    sourceId: string,
    message: InboundMessage,
    bytes: number,
    signatureDigest: string,
    context: CommandContext,
    reply: FastifyReply,
  ) {
    const claim = await deliveries.claim(tenantId, `${sourceId}\n${message.deliveryId}`, newId("message"));
    const signed = await signatures.claim(tenantId, `${sourceId}\n${signatureDigest}`, claim.messageId);
    if (signed.messageId !== claim.messageId) return null;
    const ref = { tenantId, aggregateType: "message" as const, aggregateId: claim.messageId };
    // Claimed earlier: a replay, unless that request died before storing its message.
    if (!claim.fresh && (await store.load(ref, messageDecider, { fresh: true })).state.status !== "absent") return null;
    // Only a request about to be stored spends the tenant's inbound bucket (its ingress limits,
    // kept apart from its ingest): a captured request replayed cannot drain it. Refused here, the
    // claim stays without a message, and the provider's retry is taken as new.
    await room.assertRoom();
    await spendIngress(ingress, `${tenantId}.inbound`, ingressBucketOf(view.tenant(tenantId), ingressDefaults), reply);
    await spendPayloadBytes(payloadBytes, tenantId, bytes, payloadLimitsOf(view, tenantId, payloadDefaults));
    const { eventType, payload, deliveryId } = message;
    const events = messageDecider.decide({ type: "ReceiveMessage", eventType, payload, eventId: deliveryId, sourceId }, messageDecider.initialState());
    try {
      const { lastSeq } = await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: claim.messageId, context });
      return { messageId: claim.messageId, lastSeq };
    } catch (error) {
      // A concurrent request with the same delivery id stored it first.
      if (error instanceof ConcurrencyError) return null;
      throw error;
    }
  }

  /** The scheme of each request whose source was found, for its `webhook_inbound_requests_total` line. */
  const schemes = new WeakMap<FastifyRequest, SourceScheme>();

  /**
   * Counts a refused request, spends its address's budget (429 past it), then logs and records it
   * and answers 401 (which stands even if the record fails).
   */
  async function refuse(request: FastifyRequest, ref: AggregateRef, scheme: SourceScheme, rejected: Rejection, context: CommandContext): Promise<never> {
    metrics.signatureRejected(scheme, rejected.reason);
    await spendUnverified(request);
    const fields = { tenantId: ref.tenantId, sourceId: ref.aggregateId, scheme, reason: rejected.reason };
    if (!(await mayRecord(ref))) {
      request.log.warn({ ...fields, recorded: false }, "inbound request refused (past the recording rate: counted, not recorded)");
      throw E.unauthorized("the request's signature did not verify");
    }
    request.log.warn(fields, "inbound request refused");
    try {
      await store.handle(ref, sourceDecider, { type: "RejectSignature", ...rejected }, { causeId: `${ref.aggregateId}.rejected.${newUlid()}`, context });
    } catch (error) {
      request.log.error({ ...fields, err: error }, "could not record a refused inbound request");
    }
    throw E.unauthorized("the request's signature did not verify");
  }

  app.post(
    "/v1/inbound/:tenantId/:sourceId",
    {
      config: { scope: null },
      // Every answer counts, a 429 from the ingress limit (before the handler) and a 404 included; the
      // scheme is the source's when it is known (the view has it before the handler loads it).
      onResponse: async (request, reply) => {
        const { tenantId, sourceId } = (request.params ?? {}) as { tenantId?: string; sourceId?: string };
        const known = tenantId && sourceId ? view.source(tenantId, sourceId)?.state : undefined;
        metrics.inboundAnswered(schemes.get(request) ?? known?.scheme, reply.statusCode);
      },
      schema: {
        tags: ["inbound"],
        summary: "Receive a provider's webhook, verified by the source's signing scheme",
        params: InboundParams,
        response: {
          200: z.object({ challenge: z.string() }).describe("Slack's URL verification handshake, answered"),
          202: IngestOut,
          ...errorResponses(400, 401, 404, 413, 422, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const { tenantId, sourceId } = request.params;
      const { ref, state } = await liveSource(request, tenantId, sourceId);
      const at = now();
      const context: CommandContext = { correlationId: request.id, causationId: null, actor: { kind: "system", id: `inbound:${sourceId}` }, now: at };
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const { scheme, hmac, eventTypeFrom } = state;
      schemes.set(request, scheme);
      spans.enter(request, context, { "zen.tenant_id": tenantId, "zen.source_id": sourceId, "zen.scheme": scheme });

      const verdict = verifyInbound({
        scheme,
        hmac,
        secret: secretBox.decrypt(state.secret),
        request: { headers: request.headers, body, nowSeconds: Math.floor(at.getTime() / 1000) },
      });
      if (!verdict.ok) return refuse(request, ref, scheme, { reason: verdict.reason }, context);

      const message = describeInbound({ scheme, hmac, eventTypeFrom, headers: request.headers, body, signature: verdict.signature });
      const challenge = slackChallenge(scheme, message.payload);
      if (challenge !== undefined) return reply.status(200).send({ challenge });
      const accepted = await accept(tenantId, sourceId, message, body.length, verdict.digest, context, reply);
      if (!accepted) return refuse(request, ref, scheme, { reason: "replayed", deliveryId: message.deliveryId }, context);
      spans.enter(request, context, { "zen.message_id": accepted.messageId });
      request.log.info({ tenantId, sourceId, scheme, messageId: accepted.messageId, eventType: message.eventType, seq: accepted.lastSeq }, "inbound message accepted");
      return withSeq(reply, accepted.lastSeq)
        .status(202)
        .send({ messageId: accepted.messageId, status: "accepted" as const });
    },
  );
};
