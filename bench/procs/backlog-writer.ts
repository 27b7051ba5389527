import { createHash, randomBytes } from "node:crypto";
import { stringify } from "safe-stable-stringify";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { DEFAULT_RETRY_POLICY, type Actor, type AggregateType } from "../../contracts/common.js";
import { EVENT_HEADERS, type Envelope } from "../../contracts/envelope.js";
import { schemaVersionOf, type DomainEvent } from "../../contracts/events.js";
import { deliveryDecider, messageDecider } from "../../domain/index.js";
import { createTopology } from "../../streams/topology.js";
import { serve } from "../lib/rpc.js";

/**
 * Writes a projection backlog straight to a platform's event stream: for each message the four
 * events a delivered message leaves (message.received, routing.decided, delivery.scheduled,
 * delivery.succeeded carrying its attempt), decided by the platform's own deciders, hash-chained
 * and sealed as the event store does, with the same subjects, headers and Nats-Msg-Ids.
 * Much faster than driving 200,000 or 1,000,000 events through the api.
 */
/** The envelope's hash as the event store defines it: sha256 of the canonical JSON of every other field. */
function seal(unsealed: Omit<Envelope, "hash">): Envelope {
  return { ...unsealed, hash: createHash("sha256").update(stringify(unsealed)).digest("hex") };
}

const SYSTEM: Actor = { kind: "system", id: "bench" };
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: "bench-backlog-writer", noAsyncTraces: true });
const js = jetstream(nc);

interface Options {
  prefix: string;
  tenantId: string;
  endpointId: string;
  messages: number;
  lanes?: number;
}

async function run({ prefix, tenantId, endpointId, messages, lanes = 256 }: Options) {
  const topology = createTopology(prefix);
  const pad = "x".repeat(1024 - 60);
  const runTag = randomBytes(4).toString("hex");
  let next = 0;
  let published = 0;

  const publish = async (
    type: AggregateType,
    aggregateId: string,
    causeId: string,
    index: number,
    event: DomainEvent,
    prevHash: string | null,
    causationId: string | null,
    now: string,
  ): Promise<Envelope & { seq: number }> => {
    const envelope = seal({
      id: `${causeId}:${index}`,
      type: event.type,
      schemaVersion: schemaVersionOf(event.type),
      tenantId,
      aggregateType: type,
      aggregateId,
      occurredAt: now,
      correlationId: `bench-${runTag}`,
      causationId,
      actor: SYSTEM,
      data: event.data,
      prevHash,
    });
    const h = natsHeaders();
    h.set(EVENT_HEADERS.type, envelope.type);
    h.set(EVENT_HEADERS.tenant, tenantId);
    h.set(EVENT_HEADERS.aggregateType, type);
    h.set(EVENT_HEADERS.aggregateId, aggregateId);
    h.set(EVENT_HEADERS.correlation, envelope.correlationId);
    const { seq } = await js.publish(topology.aggregateSubject(tenantId, type, aggregateId), JSON.stringify(envelope), { msgID: envelope.id, headers: h });
    published++;
    return { ...envelope, seq };
  };

  const one = async (i: number) => {
    const now = new Date().toISOString();
    const messageId = `msg_bench${runTag}${i}`;
    const [received] = messageDecider.decide({ type: "ReceiveMessage", eventType: "bench.backlog", payload: { i, pad } }, messageDecider.initialState());
    const e1 = await publish("message", messageId, messageId, 0, received!, null, null, now);
    const routed = messageDecider.evolve(messageDecider.initialState(), received!);
    const [routing] = messageDecider.decide(
      { type: "DecideRouting", messageId, registrySeq: e1.seq, endpoints: [{ endpointId, status: "active", eventTypes: ["*"] }] },
      routed,
    );
    const e2 = await publish("message", messageId, `${messageId}:routing`, 0, routing!, e1.hash, e1.id, now);
    if (routing!.type !== "routing.decided") throw new Error("unexpected routing event");
    const deliveryId = routing!.data.targets[0]!.deliveryId;
    const [scheduled] = deliveryDecider.decide(
      { type: "ScheduleDelivery", messageId, endpointId, eventType: "bench.backlog", messageSeq: e1.seq, messageReceivedAt: now, registrySeq: e1.seq },
      deliveryDecider.initialState(),
    );
    const e3 = await publish("delivery", deliveryId, `${deliveryId}:scheduled`, 0, scheduled!, null, e2.id, now);
    const pending = deliveryDecider.evolve(deliveryDecider.initialState(), scheduled!);
    const outcome = deliveryDecider.decide(
      { type: "RecordAttempt", attempt: { startedAt: now, latencyMs: 2, statusCode: 200 }, policy: DEFAULT_RETRY_POLICY, now, random: 0.5 },
      pending,
    );
    let prev = e3;
    for (const [index, event] of outcome.entries()) prev = await publish("delivery", deliveryId, `${deliveryId}:attempt:1`, index, event, prev.hash, e3.id, now);
  };

  const started = performance.now();
  const lane = async () => {
    while (next < messages) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, messages) }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { published, seconds, rate: published / seconds };
}

serve({ run }, {}, () => nc.close());
