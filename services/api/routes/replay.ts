import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  MAX_REPLAY_FILTER_MATCHES,
  ReplayAcceptedOut,
  ReplayIn,
  ReplayOut,
  ReplayParams,
  type ReplayFilterIn,
} from "../../../contracts/http/replay.js";
import { ID_PREFIX } from "../../../contracts/common.js";
import { compact } from "../../../domain/shared/equal.js";
import { DomainError } from "../../../domain/errors.js";
import { replayDecider, type ReplaySelection } from "../../../domain/replay/replay.js";
import type { Database } from "../../../projections/db.js";
import { withTenant } from "../../../projections/tenant-scope.js";
import { countReplaysInFlight, getReplay, selectDeadDeliveryIds, type ReplayRow } from "../../../projections/read-models/replays.js";
import { ConcurrencyError, type AggregateRef, type EventStore } from "../../../streams/event-store.js";
import { authOf, tenantOf } from "../auth.js";
import * as E from "../errors.js";
import { sha256Hex } from "../keys.js";
import { commandContext, MIN_SEQ_WAIT_MS, minSeqHook, withSeq } from "../plumbing.js";
import type { ReadModels } from "../read-models.js";
import type { RegistryPort } from "../deps.js";
import { DEFAULT_QUOTAS, errorResponses, quotaOf, TENANT_ERRORS } from "./shared.js";

/** What the replay routes read from the Postgres read models: every query scoped to one tenant. */
export interface ReplayReads {
  /** Dead deliveries a filter selects, at most `max + 1` (so "too many" can be told apart). */
  deadDeliveryIds(tenantId: string, filter: ReplayFilterIn, max: number): Promise<string[]>;
  getReplay(tenantId: string, replayId: string): Promise<ReplayRow | null>;
  /** The tenant's replays not yet completed or failed. */
  replaysInFlight(tenantId: string): Promise<number>;
}

export function createReplayReads(db: Database): ReplayReads {
  return {
    // Tenant-bound reads (row-level security), like every api read of the read models.
    deadDeliveryIds: (tenantId, filter, max) => withTenant(db, tenantId, (tx) => selectDeadDeliveryIds(tx, tenantId, filter, max)),
    getReplay: (tenantId, replayId) => withTenant(db, tenantId, (tx) => getReplay(tx, tenantId, replayId)),
    replaysInFlight: (tenantId) => withTenant(db, tenantId, (tx) => countReplaysInFlight(tx, tenantId)),
  };
}

type Deps = {
  store: EventStore;
  reads: ReplayReads;
  readModels: Pick<ReadModels, "waitForSeq">;
  now: () => Date;
  view: RegistryPort;
  quotas?: Pick<typeof DEFAULT_QUOTAS, "maxReplaysInFlight">;
};
/** When a tenant past its replays in flight may try again: replays usually complete within seconds. */
const REPLAY_QUOTA_RETRY_AFTER_SECONDS = 5;
const replayScope = { scope: "dlq:replay" as const, tenantScoped: true };
/** The request replays and conflicts through the app's Idempotency-Key mechanism, which requires the key here. */
const replayRequest = { ...replayScope, idempotency: "required" as const };
const tags = ["dlq"];

/** The Idempotency-Key of a request; the idempotency plugin has already checked it is there and well-formed. */
function idempotencyKeyOf(request: FastifyRequest): string {
  const value = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (typeof value !== "string" || value.length === 0) throw E.idempotencyKeyRequired();
  return value;
}

/**
 * The replay id of an Idempotency-Key: a digest of the key's scope (operator or tenant, the tenant,
 * this route) and the key, so a repeat names the same replay aggregate and can never start a second.
 */
export function replayIdFor(scope: "operator" | "tenant", tenantId: string, key: string): string {
  return `${ID_PREFIX.replay}${sha256Hex(["dlq.replay", scope, tenantId, key].join("\n")).slice(0, 32)}`;
}

const render = (row: ReplayRow): ReplayOut => compact({ ...row, reason: row.reason ?? undefined, completedAt: row.completedAt ?? undefined });

/** DLQ replays: request one (by ids or by filter, idempotent by key) and follow its progress. */
export const replayRoutes: FastifyPluginAsyncZod<Deps> = async (app, { store, reads, readModels, now, view, quotas = DEFAULT_QUOTAS }) => {
  /**
   * Refuses a new replay while the tenant has its quota of replays running (counted in the read
   * model, so replays requested in the same instant may pass it by the few not yet projected).
   */
  async function assertReplayRoom(tenantId: string): Promise<void> {
    const limit = quotaOf(view, tenantId, "maxReplaysInFlight", { ...DEFAULT_QUOTAS, ...quotas });
    if ((await reads.replaysInFlight(tenantId)) < limit) return;
    throw E.quotaRateLimited(
      "replays_in_flight",
      `at most ${limit} DLQ replays may run at once per tenant; wait for one to complete`,
      limit,
      REPLAY_QUOTA_RETRY_AFTER_SECONDS,
    );
  }

  app.addHook("preHandler", minSeqHook(readModels));

  /** The deliveries a selection names now: its ids, or the DLQ entries its filter matches. */
  async function deliveriesOf(tenantId: string, selection: ReplaySelection): Promise<string[]> {
    if ("deliveryIds" in selection) return selection.deliveryIds;
    // The DLQ read model must hold everything stored so far, or a rebuilding or lagging projection
    // would make the filter select only part of the dead deliveries.
    const seq = await store.streamLastSeq();
    if (!(await readModels.waitForSeq(seq, MIN_SEQ_WAIT_MS))) throw E.readModelBehind(seq);
    const deliveryIds = await reads.deadDeliveryIds(tenantId, selection.filter, MAX_REPLAY_FILTER_MATCHES);
    if (deliveryIds.length > MAX_REPLAY_FILTER_MATCHES) {
      throw E.unprocessable(`the filter selects more than ${MAX_REPLAY_FILTER_MATCHES} dead deliveries; narrow it (e.g. by since/until)`);
    }
    return deliveryIds;
  }

  /** The replay already exists: the same selection is a repeat (same id), another is a conflict. */
  async function existing(ref: AggregateRef, selection: ReplaySelection) {
    const loaded = await store.load(ref, replayDecider, { fresh: true });
    if (loaded.state.status === "absent") return null;
    try {
      replayDecider.decide({ type: "RequestReplay", selection, deliveryIds: [] }, loaded.state);
    } catch (error) {
      if (error instanceof DomainError) throw new E.ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different replay request");
      throw error;
    }
    return loaded.version;
  }

  app.post(
    "/v1/webhooks/dlq/replay",
    {
      config: replayRequest,
      schema: {
        tags,
        summary: "Replay dead-lettered deliveries, by ids or by filter (Idempotency-Key required)",
        body: ReplayIn,
        response: { 202: ReplayAcceptedOut, ...errorResponses(...TENANT_ERRORS, 409, 413, 415, 422, 429) },
      },
    },
    async (request, reply) => {
      const tenantId = tenantOf(request);
      const key = idempotencyKeyOf(request);
      const replayId = replayIdFor(authOf(request).principal.kind === "operator" ? "operator" : "tenant", tenantId, key);
      const ref: AggregateRef = { tenantId, aggregateType: "replay", aggregateId: replayId };
      const repeat = (seq: number) => withSeq(reply, seq).header(IDEMPOTENT_REPLAYED_HEADER, "true").status(202).send({ replayId });
      const selection = selectionOf(request.body);
      const seen = await existing(ref, selection);
      if (seen !== null) return repeat(seen);
      await assertReplayRoom(tenantId);
      const deliveryIds = await deliveriesOf(tenantId, selection);
      const events = replayDecider.decide({ type: "RequestReplay", selection, deliveryIds }, replayDecider.initialState());
      const context = commandContext(request, now());
      try {
        // Version 0 expected: a concurrent request with the same key loses here and answers as a repeat.
        const { lastSeq } = await store.append(ref, events, { expectedVersion: 0, prevHash: null, causeId: `${replayId}:requested`, context });
        request.log.info(
          { tenantId, replayId, requested: events[0]?.type === "replay.requested" ? events[0].data.deliveryIds.length : 0, seq: lastSeq },
          "replay requested",
        );
        return withSeq(reply, lastSeq).status(202).send({ replayId });
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        const version = await existing(ref, selection);
        if (version === null) throw error;
        return repeat(version);
      }
    },
  );

  app.get(
    "/v1/webhooks/dlq/replay/:replayId",
    {
      config: replayScope,
      schema: {
        tags,
        summary: "A replay's progress",
        params: ReplayParams,
        response: { 200: ReplayOut, ...errorResponses(...TENANT_ERRORS, 404) },
      },
    },
    async (request) => {
      const row = await reads.getReplay(tenantOf(request), request.params.replayId);
      if (!row) throw E.notFound("replay not found");
      return render(row);
    },
  );
};

/** The selection a body makes, as the event records it: exactly one of ids and filter, else 400. */
function selectionOf(input: ReplayIn): ReplaySelection {
  if (input.deliveryIds && input.filter === undefined) return { deliveryIds: input.deliveryIds };
  if (input.filter && input.deliveryIds === undefined) return { filter: compact(input.filter) };
  throw E.invalidRequest("name exactly one of deliveryIds and filter", [{ path: "body", message: "exactly one of deliveryIds and filter" }]);
}
