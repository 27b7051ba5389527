import { z } from "zod";
import { prefixedId } from "../common.js";
import { Timestamp } from "./common.js";

/** The header naming a request's idempotency key (API.md "Conventions"); required on replays. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
/** The answer header of a repeated request (same key, same body). */
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed";

/** Most delivery ids one request may name (the body limit may refuse fewer first). */
export const MAX_REPLAY_IDS = 5_000;
/** Most dead deliveries one filter may select; a wider filter is refused (422), never cut short. */
export const MAX_REPLAY_FILTER_MATCHES = 10_000;

/**
 * A replay filter over the DLQ, as `GET /v1/webhooks/dlq` filters it. `since`/`until` bound the
 * time the delivery died (`deadAt`). It is resolved against the DLQ read model when the request is
 * accepted, and the deliveries it names then are recorded in the replay (send `X-Zen-Min-Seq` to
 * have the DLQ read model caught up first); each is checked again against the log before it is
 * scheduled.
 */
export const ReplayFilterIn = z
  .object({
    endpointId: prefixedId("endpoint").optional(),
    eventType: z.string().min(1).max(200).optional(),
    since: z.string().datetime({ offset: true }).optional().describe("Died at or after this time, ISO 8601"),
    until: z.string().datetime({ offset: true }).optional().describe("Died before this time, ISO 8601"),
  })
  .strict()
  .describe("Which dead deliveries to replay; every field narrows, none selects the whole DLQ");
export type ReplayFilterIn = z.infer<typeof ReplayFilterIn>;

/** `POST /v1/webhooks/dlq/replay` body: exactly one of `deliveryIds` and `filter`. */
export const ReplayIn = z
  .object({
    deliveryIds: z
      .array(prefixedId("delivery"))
      .min(1)
      .max(MAX_REPLAY_IDS)
      .optional()
      .describe("Dead deliveries to replay; any that is not a dead delivery of your tenant is counted as skipped"),
    filter: ReplayFilterIn.optional(),
  })
  .strict()
  .describe("A DLQ replay: exactly one of `deliveryIds` and `filter`; the `Idempotency-Key` header is required");
export type ReplayIn = z.infer<typeof ReplayIn>;

export const ReplayAcceptedOut = z
  .object({ replayId: prefixedId("replay").describe("The replay's id (`rpl_…`): the same for a repeat of the same Idempotency-Key") })
  .describe("The replay is recorded and will be carried out");
export type ReplayAcceptedOut = z.infer<typeof ReplayAcceptedOut>;

export const ReplayParams = z.object({ replayId: prefixedId("replay") }).strict();

/** A replay's progress. */
export const ReplayOut = z
  .object({
    id: z.string(),
    status: z
      .enum(["pending", "running", "completed", "failed"])
      .describe("pending (nothing scheduled yet) → running → completed (every selected delivery scheduled again) | failed"),
    requested: z.number().int().describe("Deliveries the selection named"),
    replayed: z.number().int().describe("Scheduled again so far"),
    skipped: z.number().int().describe("Named but not dead deliveries of your tenant"),
    succeeded: z.number().int().describe("Replayed deliveries that have since succeeded"),
    failed: z.number().int().describe("Replayed deliveries that have since died again"),
    reason: z.string().optional().describe("Why the replay failed"),
    createdAt: Timestamp,
    completedAt: Timestamp.optional(),
  })
  .describe("A DLQ replay and its progress; the counts keep moving as the replayed deliveries finish");
export type ReplayOut = z.infer<typeof ReplayOut>;
