import type { Tx } from "../db.js";
import { apiKeysReadModel } from "./api-keys.js";
import { auditReadModel } from "./audit.js";
import { deliveriesReadModel } from "./deliveries.js";
import { endpointsReadModel } from "./endpoints.js";
import { messagesReadModel } from "./messages.js";
import { parkedReadModel } from "./parked.js";
import { replaysReadModel } from "./replays.js";
import type { BatchReadModel, EnvelopeOf, KnownEnvelope, ReadModel, Sequenced } from "./shared.js";
import { sourcesReadModel } from "./sources.js";
import { tenantsReadModel } from "./tenants.js";

/** The read models of the rare (registry) events, applied one event at a time, in this order. */
export const readModels: readonly ReadModel[] = [
  tenantsReadModel,
  apiKeysReadModel,
  endpointsReadModel,
  replaysReadModel,
  sourcesReadModel,
  parkedReadModel,
  auditReadModel,
];

/**
 * The read models of the hot events (messages, routing, deliveries): each applies a run of
 * consecutive hot events with a few set-based statements. No other read model handles these
 * types, and the two share no rows, so either may go first within a run.
 */
export const batchReadModels = [messagesReadModel, deliveriesReadModel] as const;

type HotType = (typeof batchReadModels)[number]["handles"][number];
const hotTypes = new Set<string>(batchReadModels.flatMap((m) => m.handles));
const isHot = (e: Sequenced): e is Sequenced<EnvelopeOf<HotType>> => hotTypes.has(e.envelope.type);
const handledBy = <T extends HotType>(model: BatchReadModel<T>, run: readonly Sequenced[]) =>
  run.filter((e): e is Sequenced<EnvelopeOf<T>> => (model.handles as readonly string[]).includes(e.envelope.type));

/** Every table a read model writes: what a rebuild truncates. */
export const readModelTables = [
  "tenants",
  "api_keys",
  "endpoints",
  "messages",
  "deliveries",
  "delivery_attempts",
  "dlq_entries",
  "replays",
  "audit_log",
  "sources",
  "parked_messages",
] as const;

/**
 * Applies events in stream order (sequences increasing). Each run of consecutive hot events goes to
 * the batch read models at once; a registry event between two runs is applied on its own, after the
 * run before it and before the run after it, so every table sees its events in stream order (a
 * replay's row exists before the deliveries it replays count towards it).
 */
export async function applyEvents(tx: Tx, events: readonly Sequenced[]): Promise<void> {
  let run: Sequenced<EnvelopeOf<HotType>>[] = [];
  const flushRun = async () => {
    if (run.length === 0) return;
    await messagesReadModel.applyAll(tx, handledBy(messagesReadModel, run));
    await deliveriesReadModel.applyAll(tx, handledBy(deliveriesReadModel, run));
    run = [];
  };
  for (const event of events) {
    if (isHot(event)) {
      run.push(event);
      continue;
    }
    await flushRun();
    for (const model of readModels) {
      if (model.handles.includes(event.envelope.type)) await model.apply(tx, event.envelope, event.seq);
    }
  }
  await flushRun();
}

/** Applies one event (at stream sequence `seq`) to every read model that handles its type. */
export async function applyEvent(tx: Tx, envelope: KnownEnvelope, seq: number): Promise<void> {
  await applyEvents(tx, [{ seq, envelope }]);
}
