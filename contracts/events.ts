import { z } from "zod";
import { Actor, EncryptedSecret, RateLimit, RetryPolicy, DeliveryPolicy, Scope, TokenBucket } from "./common.js";
import { EventTypeFrom, HmacConfig, SignatureRejectionReason, SourceScheme } from "./inbound.js";

/**
 * Event payloads, one schema per event type. Every event travels inside the envelope of
 * `contracts/envelope.ts`; `type` and `schemaVersion` live on the envelope, the payload in `data`.
 * Events are append-only: a change of shape is a new `schemaVersion`, never an edit of an old one.
 */

/** An error class: the one word every delivery outcome is filed under (see API.md's retry table). */
export const ErrorClass = z.enum([
  "none",
  "timeout",
  "connection_error",
  "dns_error",
  "server_error",
  "request_timeout",
  "rate_limited",
  "unavailable",
  "gone",
  "redirect",
  "client_error",
  "not_implemented",
  "blocked_target",
  "endpoint_unavailable",
]);
export type ErrorClass = z.infer<typeof ErrorClass>;

export const TenantCreated = z.object({ name: z.string() }).strict();

/** Per-tenant limits set by the operator; `null` removes one (back to the platform default). */
export const TenantLimitsSet = z
  .object({
    /** Outbound deliveries of all the tenant's endpoints together (off unless set). */
    outbound: TokenBucket.nullable().optional(),
    /** Ingest requests of the tenant. */
    ingress: TokenBucket.nullable().optional(),
    /** Endpoints the tenant may have (deleted ones not counted); absent: the platform's default. */
    maxEndpoints: z.number().int().min(1).nullable().optional(),
    /** Inbound sources the tenant may have; absent: the platform's default. */
    maxSources: z.number().int().min(1).nullable().optional(),
    /** Test sends (`POST /v1/webhooks/test`) a minute; absent: the platform's default. */
    testSendsPerMinute: z.number().int().min(1).nullable().optional(),
    /** DLQ replays not yet completed at once; absent: the platform's default. */
    maxReplaysInFlight: z.number().int().min(1).nullable().optional(),
    /** Delivery attempts in flight at once in each dispatcher process; absent: the platform's share. */
    maxAttemptsInFlight: z.number().int().min(1).nullable().optional(),
    /** Live event-feed connections at once, in each api process; absent: the platform's default. */
    maxLiveFeeds: z.number().int().min(1).nullable().optional(),
    /** Ingested and inbound payload bytes a second (a burst of one second's worth), and a day. */
    payloadBytesPerSecond: z.number().int().min(1).nullable().optional(),
    payloadBytesPerDay: z.number().int().min(1).nullable().optional(),
  })
  .strict();

export const ApiKeyCreated = z
  .object({
    name: z.string(),
    scopes: z.array(Scope),
    /** sha256 (hex) of the whole key; the key itself is never stored. */
    keyHash: z.string(),
    /** The first characters of the key, safe to show in lists. */
    keyPrefix: z.string(),
  })
  .strict();

export const ApiKeyRevoked = z.object({}).strict();

/**
 * The key authenticated a request. Recorded at most once an hour per key and api process, so
 * `lastUsedAt` is accurate to the hour and costs nothing per request.
 */
export const ApiKeyUsed = z.object({ usedAt: z.string() }).strict();

export const EndpointRegistered = z
  .object({
    url: z.string(),
    description: z.string().optional(),
    eventTypes: z.array(z.string()),
    secret: EncryptedSecret,
    rateLimit: RateLimit.optional(),
    retryPolicy: RetryPolicy.partial().optional(),
    deliveryPolicy: DeliveryPolicy.partial().optional(),
    metadata: z.record(z.string()).optional(),
  })
  .strict();

/** The fields a PATCH changed, and only those; `null` clears an optional field. */
export const EndpointUpdated = z
  .object({
    url: z.string().optional(),
    description: z.string().nullable().optional(),
    eventTypes: z.array(z.string()).optional(),
    active: z.boolean().optional(),
    rateLimit: RateLimit.nullable().optional(),
    retryPolicy: RetryPolicy.partial().nullable().optional(),
    deliveryPolicy: DeliveryPolicy.partial().nullable().optional(),
    metadata: z.record(z.string()).nullable().optional(),
  })
  .strict();

export const EndpointDisabled = z.object({ reason: z.string() }).strict();

/**
 * The endpoint's signing secret was replaced. `secret` is the new one, encrypted; the one it replaces
 * (already in the log, encrypted) keeps signing beside it until `previousExpiresAt`.
 */
export const EndpointSecretRotated = z
  .object({
    secret: EncryptedSecret,
    /** When the replaced secret stops signing: the rotation's time plus its grace period. */
    previousExpiresAt: z.string(),
  })
  .strict();

/** The circuit breaker stopped attempts to the endpoint after consecutive transient failures. */
export const EndpointCircuitOpened = z
  .object({
    consecutiveFailures: z.number().int().min(1),
    reason: z.string(),
    /** When probes may start (half-open). */
    halfOpenAt: z.string(),
    /** The first failure of the unbroken run of failures; the endpoint is disabled when it lasts too long. */
    failingSince: z.string(),
  })
  .strict();
export const EndpointCircuitHalfOpened = z.object({}).strict();
export const EndpointCircuitClosed = z.object({}).strict();

/**
 * A test send (`POST /v1/webhooks/test`) went out: a real request, so it is audited. Secret-free:
 * no signing secret, and `url` (a bare-URL send's target only) keeps no credentials, query or
 * fragment. `endpoint.test_sent` on the endpoint aggregate for an endpoint, `tenant.test_sent` on
 * the tenant aggregate for a bare URL.
 */
export const TestSent = z
  .object({
    /** The `webhook-id` the receiver got (`msg_test_…`). */
    webhookId: z.string(),
    eventType: z.string(),
    /** A bare-URL send's target: scheme, host, port and path only. */
    url: z.string().optional(),
    /** The receiver's status code, when it answered. */
    status: z.number().int().optional(),
    /** Why nothing was answered (`blocked_target`, `timeout`, …). */
    error: z.string().optional(),
    latencyMs: z.number(),
  })
  .strict();
export const EndpointDeleted = z.object({}).strict();

export const MessageReceived = z
  .object({
    eventType: z.string(),
    payload: z.record(z.unknown()),
    /** The client's own id for the event, when it sent one (for an inbound source: the provider's delivery id). */
    eventId: z.string().optional(),
    /** The inbound source it came through, when it came through one. */
    sourceId: z.string().optional(),
  })
  .strict();

export const RoutingCandidate = z
  .object({
    endpointId: z.string(),
    matched: z.boolean(),
    /** Why it was or was not chosen, e.g. `pattern "invoice.*" matches`, `inactive`. */
    reason: z.string(),
  })
  .strict();

const RoutingTarget = z.object({ endpointId: z.string(), deliveryId: z.string() }).strict();

/** `routing.decided` version 1: every candidate listed, so its size grew with the tenant's registry. */
export const RoutingDecidedV1 = z
  .object({
    eventType: z.string(),
    strategy: z.literal("fanout"),
    /** Stream sequence of the message: the registry was read as of this point. */
    registrySeq: z.number().int(),
    candidates: z.array(RoutingCandidate),
    targets: z.array(RoutingTarget),
  })
  .strict();
export type RoutingDecidedV1 = z.infer<typeof RoutingDecidedV1>;

/**
 * The candidates a version-2 decision lists, the first by endpoint id: enough to show why, while the
 * event's size grows with its targets alone (all listed), not with the tenant's whole registry.
 */
export const MAX_LISTED_CANDIDATES = 100;

/** The whole candidate set of a decision, of which `candidates` lists at most the first 100. */
export const CandidateSet = z
  .object({
    count: z.number().int().min(0),
    /** How many matched: the number of targets. */
    matched: z.number().int().min(0),
    /** `sha256:<hex>` over every candidate, as `domain/routing/candidate-set.ts` defines it. */
    digest: z.string(),
  })
  .strict();

/** `routing.decided` version 2: a bounded list of candidates plus a digest of the whole set. */
export const RoutingDecided = z
  .object({
    eventType: z.string(),
    strategy: z.literal("fanout"),
    /** Stream sequence of the message: the registry was read as of this point. */
    registrySeq: z.number().int(),
    candidates: z.array(RoutingCandidate).max(MAX_LISTED_CANDIDATES),
    candidateSet: CandidateSet,
    targets: z.array(RoutingTarget),
  })
  .strict();

/** `delivery.scheduled` version 1: every delivery carried its own copy of the message's payload. */
export const DeliveryScheduledV1 = z
  .object({
    messageId: z.string(),
    endpointId: z.string(),
    eventType: z.string(),
    payload: z.record(z.unknown()),
    messageReceivedAt: z.string(),
    registrySeq: z.number().int(),
  })
  .strict();

/**
 * A delivery of a message to one endpoint. Version 2 names the message's `message.received` by its
 * stream sequence (`messageSeq`), where the body the receiver gets comes from; version 1 carried a
 * copy of the payload instead, and is read as version 2 with `messageSeq` = its `registrySeq` (where
 * the router recorded the message's own sequence) and that copy kept, which is what gets sent.
 */
export const DeliveryScheduled = z
  .object({
    messageId: z.string(),
    endpointId: z.string(),
    eventType: z.string(),
    /** Stream sequence of the message's `message.received`. */
    messageSeq: z.number().int(),
    /** The payload's own copy: only in deliveries scheduled as version 1. */
    payload: z.record(z.unknown()).optional(),
    /** When the message was accepted: the `timestamp` of the outbound body. */
    messageReceivedAt: z.string(),
    /** Stream sequence the registry must have reached before this delivery is attempted. */
    registrySeq: z.number().int(),
  })
  .strict();

/**
 * One attempt, as written before the outcomes carried their attempt (version 2 of
 * `delivery.succeeded`, `delivery.retry_scheduled` and `delivery.dead_lettered`): streams written
 * before hold it, followed by its outcome; nothing writes it any more.
 */
export const DeliveryAttempted = z
  .object({
    attempt: z.number().int().min(1),
    startedAt: z.string(),
    latencyMs: z.number().int().min(0),
    statusCode: z.number().int().optional(),
    errorClass: ErrorClass,
    /** A short, secret-free description of what went wrong. */
    error: z.string().optional(),
    /** The start of the response body, bounded and redacted. */
    responseSnippet: z.string().optional(),
    /** The receiver's `Retry-After`, converted to milliseconds. */
    retryAfterMs: z.number().int().min(0).optional(),
  })
  .strict();

/**
 * The attempt an outcome settles, recorded in the outcome itself (schema version 2): one event, one
 * append per attempt. Absent from version-1 outcomes, whose attempt is the `delivery.attempted`
 * stored just before them, from the outcome of an attempt whose own outcome a crash lost, and from a
 * delivery dead-lettered without an attempt (its retry window ran out behind an open circuit).
 */
const settledAttempt = { attempted: DeliveryAttempted.optional() };

export const DeliverySucceeded = z.object({ attempt: z.number().int(), statusCode: z.number().int(), ...settledAttempt }).strict();

export const DeliveryRetryScheduled = z
  .object({
    attempt: z.number().int(),
    nextAttempt: z.number().int(),
    nextAttemptAt: z.string(),
    delayMs: z.number().int().min(0),
    errorClass: ErrorClass,
    reason: z.string(),
    ...settledAttempt,
  })
  .strict();

export const DeliveryDeadLettered = z.object({ attempt: z.number().int(), errorClass: ErrorClass, reason: z.string(), ...settledAttempt }).strict();

/** A dead delivery scheduled again by a replay: a new attempt series starts (numbers go on). */
export const DeliveryReplayed = z.object({ replayId: z.string(), series: z.number().int().min(2) }).strict();

/** What a replay asked for: exactly one of explicit ids or a filter over the DLQ. */
export const ReplaySelection = z.union([
  z.object({ deliveryIds: z.array(z.string()).min(1).max(10_000) }).strict(),
  z
    .object({
      filter: z.object({ endpointId: z.string().optional(), eventType: z.string().optional(), since: z.string().optional(), until: z.string().optional() }).strict(),
    })
    .strict(),
]);

export const ReplayRequested = z
  .object({
    selection: ReplaySelection,
    /** The deliveries the selection named when it was made; each is checked again before it is replayed. */
    deliveryIds: z.array(z.string()),
  })
  .strict();

export const ReplayCompleted = z
  .object({
    replayed: z.array(z.string()),
    /** Named but not dead deliveries of this tenant (never revealed beyond their count). */
    skipped: z.number().int().min(0),
  })
  .strict();

export const ReplayFailed = z.object({ reason: z.string() }).strict();

// --- Inbound sources (issue 5, part 4): the source aggregate and its signature failures. ---

export const SourceCreated = z
  .object({
    name: z.string(),
    scheme: SourceScheme,
    /** The provider's signing secret, sealed; never in plain text. */
    secret: EncryptedSecret,
    /** The generic scheme's settings (scheme `hmac` only). */
    hmac: HmacConfig.optional(),
    eventTypeFrom: EventTypeFrom.optional(),
  })
  .strict();

/** The fields a PATCH changed, and only those; `null` clears an optional field. */
export const SourceUpdated = z
  .object({
    name: z.string().optional(),
    secret: EncryptedSecret.optional(),
    hmac: HmacConfig.optional(),
    eventTypeFrom: EventTypeFrom.nullable().optional(),
  })
  .strict();

export const SourceDeleted = z.object({}).strict();

/** An inbound request the source refused: why, under which scheme; never the signature or secret. */
export const SignatureRejected = z
  .object({
    reason: SignatureRejectionReason,
    scheme: SourceScheme,
    /** The provider's delivery id, for a replayed (validly signed) request. */
    deliveryId: z.string().optional(),
  })
  .strict();

const SourceEventSchemas = {
  "source.created": SourceCreated,
  "source.updated": SourceUpdated,
  "source.deleted": SourceDeleted,
  "signature.rejected": SignatureRejected,
} as const;

// --- end of inbound sources ---

// --- parked messages: what a reactor could not handle within its bound ---

/**
 * Why a reactor gave up on a message: its handler kept failing, kept outliving its deadline, or the
 * processes that took it never finished it (each crashed or froze holding it).
 */
export const ParkReason = z.enum(["handler_failed", "handler_timeout", "never_finished"]);
export type ParkReason = z.infer<typeof ParkReason>;

/**
 * A reactor terminated a stream message after `failures` failed handlings in a row (for
 * `never_finished`: processes that took it and never finished), so that it stops holding the
 * reactor's slots; the message itself stays in the stream, where a replay reads it.
 */
export const ParkedAdded = z
  .object({
    /** The role whose reactor parked it: `router`, `dispatcher` or `replayer`. */
    reactor: z.string(),
    streamSeq: z.number().int().min(1),
    subject: z.string(),
    /** The parked message's own event type (header), absent when it had none. */
    eventType: z.string().optional(),
    reason: ParkReason,
    failures: z.number().int().min(1),
    /** The last failure, redacted and cut to 1,000 characters. */
    error: z.string(),
  })
  .strict();

/** The operator asked for the parked message to be handled again. */
export const ParkedReplayRequested = z.object({}).strict();
/** The reactor handled the parked message again, and this time it settled. */
export const ParkedReplayed = z.object({}).strict();
/** The replay failed too; the message stays parked and may be replayed again. */
export const ParkedReplayFailed = z.object({ error: z.string() }).strict();

// --- end of parked messages ---

/** Every event type with the schema of its `data`. */
export const EventSchemas = {
  "tenant.created": TenantCreated,
  "tenant.limits_set": TenantLimitsSet,
  "tenant.test_sent": TestSent,
  "apikey.created": ApiKeyCreated,
  "apikey.revoked": ApiKeyRevoked,
  "apikey.used": ApiKeyUsed,
  "endpoint.registered": EndpointRegistered,
  "endpoint.updated": EndpointUpdated,
  "endpoint.disabled": EndpointDisabled,
  "endpoint.deleted": EndpointDeleted,
  "endpoint.secret_rotated": EndpointSecretRotated,
  "endpoint.circuit_opened": EndpointCircuitOpened,
  "endpoint.circuit_half_opened": EndpointCircuitHalfOpened,
  "endpoint.circuit_closed": EndpointCircuitClosed,
  "endpoint.test_sent": TestSent,
  "message.received": MessageReceived,
  "routing.decided": RoutingDecided,
  "delivery.scheduled": DeliveryScheduled,
  "delivery.attempted": DeliveryAttempted,
  "delivery.succeeded": DeliverySucceeded,
  "delivery.retry_scheduled": DeliveryRetryScheduled,
  "delivery.dead_lettered": DeliveryDeadLettered,
  "delivery.replayed": DeliveryReplayed,
  "replay.requested": ReplayRequested,
  "replay.completed": ReplayCompleted,
  "replay.failed": ReplayFailed,
  ...SourceEventSchemas,
  "parked.added": ParkedAdded,
  "parked.replay_requested": ParkedReplayRequested,
  "parked.replayed": ParkedReplayed,
  "parked.replay_failed": ParkedReplayFailed,
} as const;

export type EventType = keyof typeof EventSchemas;
export type EventData<T extends EventType> = z.infer<(typeof EventSchemas)[T]>;

/** A domain event before it is put in an envelope: what deciders return. */
export type DomainEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];
export type DomainEventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;

/** The schema version events of a type are written with, where it is not 1. */
export const SCHEMA_VERSIONS: Partial<Record<EventType, number>> = {
  "routing.decided": 2,
  "delivery.scheduled": 2,
  "delivery.succeeded": 2,
  "delivery.retry_scheduled": 2,
  "delivery.dead_lettered": 2,
};

/** The schema version a new event of `type` is written with; older versions are upcast on read. */
export const schemaVersionOf = (type: EventType): number => SCHEMA_VERSIONS[type] ?? 1;

export { Actor };
