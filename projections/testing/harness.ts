import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { sql } from "slonik";
import { z } from "zod";
import type { Envelope } from "../../contracts/envelope.js";
import { createTopology, type Topology } from "../../streams/topology.js";
import { createTestDatabase } from "../../test/support/postgres.js";
import { createDatabase, type Database } from "../db.js";
import { migrate } from "../migrate.js";
import { createProjector, type Projector, type ProjectorLogger } from "../projector.js";
import { readModelTables } from "../read-models/index.js";
import { withAllTenants } from "../tenant-scope.js";

export { envelopes } from "./envelopes.js";

/** Test-only: a database, a stream under a fresh prefix, and helpers to publish and compare. */
export interface Harness {
  db: Database;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  /** Publishes envelopes in order; returns their stream sequences. */
  publish(envelopes: readonly Envelope[]): Promise<number[]>;
  projector(batchSize?: number, logger?: ProjectorLogger): Projector;
  /** Every read-model row (and the checkpoint), sorted, for equality checks. */
  dump(): Promise<Record<string, unknown[]>>;
  cleanup(): Promise<void>;
}

const silent = { info: () => undefined, warn: () => undefined, error: (obj: object, msg?: string) => console.error(msg, obj) };

export async function createHarness(): Promise<Harness> {
  const database = await createTestDatabase();
  const db = await createDatabase(database.url);
  await migrate(db);
  const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const topology = createTopology(`t${randomBytes(5).toString("hex")}`);
  await jsm.streams.add({ name: topology.stream, subjects: [topology.allEvents], allow_direct: true });
  const projectors: Projector[] = [];
  return {
    db,
    nc,
    js,
    jsm,
    topology,
    async publish(envelopes) {
      const seqs: number[] = [];
      for (const e of envelopes) {
        const h = headers();
        h.set("Zen-Event-Type", e.type);
        const subject = topology.aggregateSubject(e.tenantId, e.aggregateType, e.aggregateId);
        seqs.push((await js.publish(subject, JSON.stringify(e), { headers: h, msgID: e.id })).seq);
      }
      return seqs;
    },
    projector(batchSize, logger = silent) {
      const p = createProjector({ db, js, jsm, topology, logger, lockPollMs: 50, ...(batchSize ? { batchSize } : {}) });
      projectors.push(p);
      return p;
    },
    async dump() {
      const out: Record<string, unknown[]> = {};
      for (const table of [...readModelTables, "projection_checkpoints"]) {
        out[table] = [
          ...(await withAllTenants(db, (tx) =>
            tx.anyFirst(sql.type(z.object({ row: z.string() }))`
            SELECT to_jsonb(t)::text AS row FROM ${sql.identifier([table])} t ORDER BY 1`),
          )),
        ];
      }
      return out;
    },
    async cleanup() {
      for (const p of projectors) await p.stop();
      await jsm.streams.delete(topology.stream).catch(() => false);
      await nc.close();
      await db.end();
      await database.drop();
    },
  };
}
