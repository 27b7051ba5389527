import { attemptRecordedBy } from "../../domain/delivery/delivery.js";
import type { EnvelopeOf, Sequenced } from "./shared.js";

/**
 * The pure half of the deliveries read model: a run of delivery events folded per delivery in
 * stream order, into the rows to write. Each event is guarded as its own statement would be: it
 * changes a delivery of the same tenant whose `lastSeq` is older (only `delivery.scheduled` may
 * create one), and its attempt, DLQ and replay effects follow only when it applied.
 */
export const deliveryEventTypes = [
  "delivery.scheduled",
  "delivery.attempted",
  "delivery.succeeded",
  "delivery.retry_scheduled",
  "delivery.dead_lettered",
  "delivery.replayed",
] as const;
export type DeliveryEnvelope = EnvelopeOf<(typeof deliveryEventTypes)[number]>;

/** A `deliveries` row; timestamps as strings Postgres reads back exactly. */
export interface DeliveryRow {
  id: string;
  tenantId: string;
  messageId: string;
  endpointId: string;
  eventType: string;
  status: "pending" | "retrying" | "succeeded" | "dead";
  attempts: number;
  lastStatusCode: number | null;
  lastErrorClass: string | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  succeededAt: string | null;
  deadAt: string | null;
  deadReason: string | null;
  lastSeq: number;
  replayId: string | null;
}

export type AttemptOutcome = "succeeded" | "retry" | "dead";

/** A `delivery_attempts` row; an attempt number seen again takes the newer facts. */
export interface AttemptRow {
  deliveryId: string;
  attempt: number;
  tenantId: string;
  startedAt: string;
  latencyMs: number;
  statusCode: number | null;
  errorClass: string;
  error: string | null;
  responseSnippet: string | null;
  outcome: AttemptOutcome | null;
}

export interface DlqRow {
  deliveryId: string;
  tenantId: string;
  messageId: string;
  endpointId: string;
  eventType: string;
  errorClass: string;
  reason: string;
  attempts: number;
  deadAt: string;
}

/** How much one replay's counters move. */
export interface ReplayCounts {
  replayId: string;
  tenantId: string;
  replayed: number;
  succeeded: number;
  failed: number;
}

/** Everything a run changes, each row in its final state. */
export interface DeliveryChanges {
  /** Deliveries the run changed or created. */
  deliveries: DeliveryRow[];
  /** Attempts the run recorded (their outcome folded in). */
  attempts: AttemptRow[];
  /** Outcomes of attempts recorded before the run (rows that may not exist: then nothing). */
  outcomes: Array<{ deliveryId: string; attempt: number; outcome: AttemptOutcome }>;
  /** DLQ rows to delete before `dlqUpserts` are written. */
  dlqDeletes: string[];
  dlqUpserts: DlqRow[];
  replays: ReplayCounts[];
}

const key = (deliveryId: string, attempt: number) => `${deliveryId}\u0000${attempt}`;

/** Folds `events` (stream order) over the stored rows of the deliveries they name. */
export function foldDeliveries(stored: ReadonlyMap<string, DeliveryRow>, events: readonly Sequenced<DeliveryEnvelope>[]): DeliveryChanges {
  const rows = new Map(stored);
  const changed = new Set<string>();
  const attempts = new Map<string, AttemptRow>();
  const outcomes = new Map<string, { deliveryId: string; attempt: number; outcome: AttemptOutcome }>();
  const dlqDeletes = new Set<string>();
  const dlqUpserts = new Map<string, DlqRow>();
  const replays = new Map<string, ReplayCounts>();

  const setOutcome = (deliveryId: string, attempt: number, outcome: AttemptOutcome) => {
    const k = key(deliveryId, attempt);
    const recorded = attempts.get(k);
    if (recorded) recorded.outcome = outcome;
    else outcomes.set(k, { deliveryId, attempt, outcome });
  };
  const deleteDlq = (deliveryId: string) => {
    dlqUpserts.delete(deliveryId);
    dlqDeletes.add(deliveryId);
  };
  const count = (replayId: string, tenantId: string, field: "replayed" | "succeeded" | "failed") => {
    const k = `${replayId}\u0000${tenantId}`;
    const counts = replays.get(k) ?? { replayId, tenantId, replayed: 0, succeeded: 0, failed: 0 };
    counts[field] += 1;
    replays.set(k, counts);
  };

  /** An attempt, from a `delivery.attempted` of an older stream or the outcome that carries it. */
  const recordAttempt = (row: DeliveryRow, d: EnvelopeOf<"delivery.attempted">["data"]) => {
    Object.assign(row, { attempts: d.attempt, lastStatusCode: d.statusCode ?? null, lastErrorClass: d.errorClass, lastError: d.error ?? null });
    attempts.set(key(row.id, d.attempt), {
      deliveryId: row.id,
      attempt: d.attempt,
      tenantId: row.tenantId,
      startedAt: d.startedAt,
      latencyMs: d.latencyMs,
      statusCode: d.statusCode ?? null,
      errorClass: d.errorClass,
      error: d.error ?? null,
      responseSnippet: d.responseSnippet ?? null,
      outcome: null,
    });
    outcomes.delete(key(row.id, d.attempt));
  };

  for (const { envelope: e, seq } of events) {
    const id = e.aggregateId;
    const before = rows.get(id);
    const at = e.occurredAt;
    if (!before) {
      if (e.type !== "delivery.scheduled") continue;
      const d = e.data;
      rows.set(id, {
        id,
        tenantId: e.tenantId,
        messageId: d.messageId,
        endpointId: d.endpointId,
        eventType: d.eventType,
        status: "pending",
        attempts: 0,
        lastStatusCode: null,
        lastErrorClass: null,
        lastError: null,
        nextAttemptAt: null,
        createdAt: at,
        updatedAt: at,
        succeededAt: null,
        deadAt: null,
        deadReason: null,
        lastSeq: seq,
        replayId: null,
      });
      changed.add(id);
      deleteDlq(id);
      continue;
    }
    if (before.tenantId !== e.tenantId || before.lastSeq >= seq) continue;
    const row: DeliveryRow = { ...before, updatedAt: at, lastSeq: seq };
    rows.set(id, row);
    changed.add(id);
    const attempt = attemptRecordedBy(e);
    if (attempt) recordAttempt(row, attempt);
    switch (e.type) {
      case "delivery.scheduled":
      case "delivery.replayed":
        // A new attempt series: out of the DLQ, pending again, its attempts kept (numbers go on).
        Object.assign(row, { status: "pending", nextAttemptAt: null, succeededAt: null, deadAt: null, deadReason: null });
        deleteDlq(id);
        if (e.type === "delivery.replayed") {
          row.replayId = e.data.replayId;
          count(e.data.replayId, e.tenantId, "replayed");
        }
        break;
      case "delivery.succeeded":
        Object.assign(row, { status: "succeeded", nextAttemptAt: null, succeededAt: at, lastStatusCode: e.data.statusCode });
        setOutcome(id, e.data.attempt, "succeeded");
        if (row.replayId) count(row.replayId, row.tenantId, "succeeded");
        break;
      case "delivery.retry_scheduled":
        Object.assign(row, { status: "retrying", nextAttemptAt: e.data.nextAttemptAt, lastErrorClass: e.data.errorClass });
        setOutcome(id, e.data.attempt, "retry");
        break;
      case "delivery.dead_lettered": {
        const d = e.data;
        Object.assign(row, { status: "dead", nextAttemptAt: null, deadAt: at, deadReason: d.reason, lastErrorClass: d.errorClass });
        setOutcome(id, d.attempt, "dead");
        if (row.replayId) count(row.replayId, row.tenantId, "failed");
        const { tenantId, messageId, endpointId, eventType } = row;
        dlqUpserts.set(id, { deliveryId: id, tenantId, messageId, endpointId, eventType, errorClass: d.errorClass, reason: d.reason, attempts: d.attempt, deadAt: at });
        break;
      }
    }
  }
  return {
    deliveries: [...changed].map((id) => rows.get(id)!),
    attempts: [...attempts.values()],
    outcomes: [...outcomes.values()],
    dlqDeletes: [...dlqDeletes],
    dlqUpserts: [...dlqUpserts.values()],
    replays: [...replays.values()],
  };
}
