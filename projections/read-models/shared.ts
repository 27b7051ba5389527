import { sql, type FragmentSqlToken } from "slonik";
import { Envelope, type TypedEnvelope } from "../../contracts/envelope.js";
import { EventSchemas, type EventData, type EventType } from "../../contracts/events.js";
import { upcastEnvelope } from "../../domain/upcast.js";
import type { Tx } from "../db.js";
import { compileFastCheck, type FastCheck } from "./fast-check.js";

/** An envelope whose `data` has been validated against the schema of its `type`. */
export type KnownEnvelope = { [T in EventType]: TypedEnvelope<EventData<T>, T> }[EventType];
export type EnvelopeOf<T extends EventType> = Extract<KnownEnvelope, { type: T }>;

/** An event with the stream sequence it was stored at. */
export interface Sequenced<E extends KnownEnvelope = KnownEnvelope> {
  seq: number;
  envelope: E;
}

/** One read model: the event types it handles and how one event changes its rows. */
export interface ReadModel {
  name: string;
  handles: readonly EventType[];
  apply: (tx: Tx, envelope: KnownEnvelope, seq: number) => Promise<void>;
}

/**
 * A read model for the hot event types: it applies a run of consecutive events of its types at
 * once, folding them per row in stream order and writing each table with a few set-based
 * statements. The result equals applying the events one by one.
 */
export interface BatchReadModel<T extends EventType = EventType> {
  name: string;
  handles: readonly T[];
  applyAll: (tx: Tx, events: readonly Sequenced<EnvelopeOf<T>>[]) => Promise<void>;
}

export const isKnownType = (type: string): type is EventType => Object.hasOwn(EventSchemas, type);

const envelopeCheck = compileFastCheck(Envelope);
const envelopeIsPlain = (raw: unknown): raw is Envelope => envelopeCheck(raw);
const dataIsPlain = Object.fromEntries(Object.entries(EventSchemas).map(([type, schema]) => [type, compileFastCheck(schema)])) as Record<EventType, FastCheck>;

/**
 * Validates an envelope, upcasts it to its type's current schema version (`domain/upcast.ts`), and
 * validates its data. Returns null for an event type this code does not know (a newer producer);
 * throws when the envelope or a known type's data is malformed.
 */
export function parseEnvelope(raw: unknown): KnownEnvelope | null {
  // The common case without zod's copies: a value zod would return unchanged is returned as it is.
  if (envelopeIsPlain(raw)) {
    const current = upcastEnvelope(raw);
    if (isKnownType(current.type) && dataIsPlain[current.type](current.data)) return current as KnownEnvelope;
  }
  const envelope = upcastEnvelope(Envelope.parse(raw));
  if (!isKnownType(envelope.type)) return null;
  const data: unknown = EventSchemas[envelope.type].parse(envelope.data);
  return { ...envelope, data } as KnownEnvelope;
}

/** Pagination: `limit` 1–500 (default 50) and the opaque cursor of a previous page. */
export interface PageRequest {
  limit?: number;
  cursor?: string | null;
}
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/** A cursor that is not one we issued; the api answers 400 `invalid_request`. */
export class InvalidCursorError extends Error {
  constructor() {
    super("invalid cursor");
    this.name = "InvalidCursorError";
  }
}

export const clampLimit = (limit: number | undefined) => Math.min(500, Math.max(1, Math.trunc(limit ?? 50)));

interface CursorKey {
  at: string;
  id: string;
}

export const encodeCursor = (key: CursorKey) => Buffer.from(JSON.stringify([key.at, key.id])).toString("base64url");

/**
 * The timestamps a cursor may carry: ISO 8601 date and time (as the read models give them), with an
 * optional fraction and an offset Postgres takes (Z, or up to ±15:59).
 */
const CURSOR_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-](0\d|1[0-5])(:?[0-5]\d)?)?$/;
/** The ids a cursor may carry: printable ASCII, as every id the platform issues. */
const CURSOR_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * A time Postgres takes as it is: the strict form above, with a real calendar day (no 2020-02-30)
 * and clock time. `Date.parse` alone accepts "1" and rolls 2020-02-30 over, which Postgres refuses.
 */
function isCursorTime(value: string): boolean {
  const match = CURSOR_TIME.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

export function decodeCursor(cursor: string): CursorKey {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === "string" &&
      typeof value[1] === "string" &&
      isCursorTime(value[0]) &&
      CURSOR_ID.test(value[1])
    ) {
      return { at: value[0], id: value[1] };
    }
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

/**
 * `(at, id) < cursor` for newest-first pages ordered by `(at DESC, id DESC)`; `TRUE` on the first page.
 * Columns are trusted identifiers from our own code.
 */
export function afterCursor(cursor: string | null | undefined, at: string, id: string): FragmentSqlToken {
  if (!cursor) return sql.fragment`TRUE`;
  const key = decodeCursor(cursor);
  return sql.fragment`(${sql.identifier([at])}, ${sql.identifier([id])}) < (${key.at}::timestamptz, ${key.id})`;
}

/** Cuts the `limit + 1` rows a list query fetched into a page and the next cursor. */
export function toPage<T>(rows: readonly T[], limit: number, key: (row: T) => CursorKey): Page<T> {
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  return { data, nextCursor: rows.length > limit && last ? encodeCursor(key(last)) : null };
}

/** Joins conditions with AND. */
export const whereAll = (conditions: FragmentSqlToken[]) => sql.join(conditions, sql.fragment` AND `);

/** JSON for a jsonb column; `undefined` and `null` both store SQL NULL. */
export const jsonbOrNull = (value: unknown) => (value === undefined || value === null ? null : sql.jsonb(value as Parameters<typeof sql.jsonb>[0]));
