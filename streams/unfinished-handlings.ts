import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { isWrongLastSequence } from "./jetstream-errors.js";
import type { Topology } from "./topology.js";

/** A mark outlives any crash loop it records; one a restart never came back to ages out. */
const MARK_TTL_MS = 24 * 60 * 60 * 1_000;
const MAX_CAS_ATTEMPTS = 5;

/**
 * Which messages of a reactor processes began handling and never finished. No count kept in a
 * process survives a message that kills (or freezes) every process it reaches, so the reactor
 * marks such a suspect before handling it and clears the mark after, whatever the outcome.
 */
export interface UnfinishedHandlings {
  /** How many handlings of message `seq` begun so far never finished. */
  count(seq: number): Promise<number>;
  /** Marks a handling of message `seq` begun; resolves to how many begun before it never finished. */
  begin(seq: number): Promise<number>;
  /** Clears the marks of a handling that finished (best effort: a mark left behind ages out in 24 h). */
  finish(seq: number): Promise<void>;
}

/**
 * The marks of one role's reactor in the KV bucket `<PREFIX>_UNFINISHED`, one key per message
 * (`<role>.<stream sequence>`) holding the number of handlings begun and not finished, changed by
 * compare-and-set so two processes taking the same message count both.
 */
export function createUnfinishedHandlings(js: JetStreamClient, topology: Topology, role: string): UnfinishedHandlings {
  let bucket: Promise<KV> | undefined;
  const marks = () => {
    if (!bucket) {
      bucket = new Kvm(js).create(topology.bucketName("unfinished"), { ttl: MARK_TTL_MS, replicas: topology.replicas, history: 1 });
      // A failed open (NATS away) is tried again for the next suspect, not remembered.
      bucket.catch(() => (bucket = undefined));
    }
    return bucket;
  };
  const keyOf = (seq: number) => `${role}.${seq}`;

  return {
    async count(seq) {
      const entry = await (await marks()).get(keyOf(seq));
      return entry?.operation === "PUT" ? Number(entry.string()) : 0;
    },
    async begin(seq) {
      const kv = await marks();
      const key = keyOf(seq);
      for (let attempt = 0; ; attempt++) {
        try {
          const entry = await kv.get(key);
          if (entry?.operation !== "PUT") {
            await kv.create(key, "1");
            return 0;
          }
          const begun = Number(entry.string());
          await kv.update(key, String(begun + 1), entry.revision);
          return begun;
        } catch (error) {
          if (!isWrongLastSequence(error) || attempt + 1 >= MAX_CAS_ATTEMPTS) throw error;
        }
      }
    },
    async finish(seq) {
      const kv = await marks();
      await kv.purge(keyOf(seq));
    },
  };
}
