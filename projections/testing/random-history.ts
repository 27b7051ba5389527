import type { Envelope } from "../../contracts/envelope.js";
import { boundCandidates } from "../../domain/routing/candidate-set.js";
import { parseEnvelope, type Sequenced } from "../read-models/shared.js";
import { asVersion1, envelopes, routingDecidedV1 } from "./envelopes.js";

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

/**
 * A random history of the hot event types over a few messages and deliveries, in any order (the
 * fold must match one-by-one application for every order, not only the ones the platform writes):
 * attempts before schedules, outcomes of unknown attempts, repeated attempt numbers, another tenant
 * using the same ids, replays of replays that do not exist, routing decisions of schema version 1
 * (upcast when parsed) beside version 2, deliveries scheduled as version 1 (a payload's copy) and 2,
 * outcomes with and without the attempt they settle, and version-1 outcomes. Registry events (a replay's own events, an endpoint change)
 * are mixed in, so batches split into runs around them.
 */
export function randomHistory(seed: number, length: number): Sequenced[] {
  const r = prng(seed);
  const A = "ten_pa";
  const evA = envelopes(A);
  const evB = envelopes("ten_pb");
  const at = (n: number) => new Date(Date.parse("2025-03-01T00:00:00.000Z") + n * 1000 + r.int(1000)).toISOString();
  const deliveries = ["dlv_r1", "dlv_r2", "dlv_r3"];
  const messages = ["msg_r1", "msg_r2"];
  const out: Envelope[] = [
    evA("tenant", A, "tenant.created", { name: "P" }),
    evA("endpoint", "ep_r1", "endpoint.registered", { url: "https://r.example/h", eventTypes: ["*"], secret: "enc:v1:k1:c2VjcmV0" }),
    evA("replay", "rpl_r1", "replay.requested", { selection: { deliveryIds: deliveries }, deliveryIds: deliveries }),
  ];
  for (let i = 0; i < length; i++) {
    const ev = r.next() < 0.1 ? evB : evA;
    const d = r.pick(deliveries);
    const attempt = 1 + r.int(3);
    const errorClass = r.pick(["none", "server_error", "timeout"] as const);
    const m = r.pick(messages);
    const choice = r.int(13);
    const when = at(i);
    /** Half the outcomes carry their attempt (version 2 as written now), half do not (as before it, or a resolved one). */
    const carried = () =>
      r.next() < 0.5
        ? { attempted: { attempt, startedAt: when, latencyMs: r.int(500), errorClass, ...(r.next() < 0.7 ? { statusCode: r.pick([200, 500, 503]) } : {}) } }
        : {};
    /** An outcome without its attempt is stored as version 1 half the time. */
    const outcome = (e: Envelope) => ("attempted" in (e.data as object) || r.next() < 0.5 ? e : asVersion1(e));
    if (choice === 0)
      out.push(
        ev(
          "message",
          m,
          "message.received",
          { eventType: "order.paid", payload: { i, pad: "x".repeat(r.int(40)) }, ...(r.next() < 0.5 ? { eventId: `e${i}` } : {}) },
          when,
        ),
      );
    else if (choice === 1) {
      const decision = {
        eventType: "order.paid",
        strategy: "fanout" as const,
        registrySeq: i,
        candidates: [{ endpointId: "ep_r1", matched: true, reason: `r${i}` }],
        targets: [{ endpointId: "ep_r1", deliveryId: d }],
      };
      if (r.next() < 0.5) out.push(routingDecidedV1(ev, m, decision, when));
      else out.push(ev("message", m, "routing.decided", { ...decision, ...boundCandidates(decision.candidates) }, when));
    } else if (choice <= 3) {
      const scheduled = { messageId: m, endpointId: "ep_r1", eventType: "order.paid", messageReceivedAt: when, registrySeq: i };
      // Version 1 copied the payload; version 2 names the message's event.
      if (r.next() < 0.5) out.push(asVersion1(ev("delivery", d, "delivery.scheduled", { ...scheduled, payload: { i } } as never, when)));
      else out.push(ev("delivery", d, "delivery.scheduled", { ...scheduled, messageSeq: i + 1 }, when));
    } else if (choice <= 6) {
      out.push(
        ev(
          "delivery",
          d,
          "delivery.attempted",
          {
            attempt,
            startedAt: when,
            latencyMs: r.int(500),
            errorClass,
            ...(r.next() < 0.7 ? { statusCode: r.pick([200, 500, 503]) } : {}),
            ...(r.next() < 0.5 ? { error: `boom ${i}`, responseSnippet: `snip ${i}` } : {}),
          },
          when,
        ),
      );
    } else if (choice === 7) out.push(outcome(ev("delivery", d, "delivery.succeeded", { attempt, statusCode: 200, ...carried() }, when)));
    else if (choice === 8) {
      out.push(
        outcome(
          ev(
            "delivery",
            d,
            "delivery.retry_scheduled",
            {
              attempt,
              nextAttempt: attempt + 1,
              nextAttemptAt: at(i + 5),
              delayMs: 5000,
              errorClass,
              reason: `retry ${i}`,
              ...carried(),
            },
            when,
          ),
        ),
      );
    } else if (choice === 9) out.push(outcome(ev("delivery", d, "delivery.dead_lettered", { attempt, errorClass, reason: `dead ${i}`, ...carried() }, when)));
    else if (choice === 10) out.push(ev("delivery", d, "delivery.replayed", { replayId: r.pick(["rpl_r1", "rpl_r2"]), series: 2 + r.int(3) }, when));
    else if (choice === 11) out.push(evA("endpoint", "ep_r1", "endpoint.updated", { description: `d${i}` }, when));
    else if (r.next() < 0.5)
      out.push(evA("replay", r.pick(["rpl_r1", "rpl_r2"]), "replay.completed", { replayed: deliveries.slice(0, 1 + r.int(3)), skipped: r.int(2) }, when));
    else out.push(evA("replay", "rpl_r2", "replay.requested", { selection: { deliveryIds: deliveries }, deliveryIds: deliveries }, when));
  }
  let seq = 10;
  return out.map((e) => {
    seq += 1 + r.int(2);
    return { seq, envelope: parseEnvelope(e)! };
  });
}

/** Cuts `events` into consecutive batches of random sizes (1 to `max`). */
export function randomCuts<T>(events: readonly T[], seed: number, max: number): T[][] {
  const r = prng(seed);
  const out: T[][] = [];
  for (let i = 0; i < events.length; ) {
    const n = 1 + r.int(max);
    out.push(events.slice(i, i + n));
    i += n;
  }
  return out;
}
