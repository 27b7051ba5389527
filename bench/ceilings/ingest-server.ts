import { randomBytes } from "node:crypto";
import Fastify from "fastify";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { serve } from "../lib/rpc.js";

/**
 * ceiling.ingest's server: the least an ingest endpoint can do. A bare Fastify route parses the
 * JSON body and answers 202 once one JetStream publish of it is acked (connection with
 * `noAsyncTraces`, as the platform's). Its own stream, deleted on exit.
 */
const prefix = process.env.BENCH_CEILING_PREFIX!;
const stream = `${prefix.toUpperCase()}_INGEST`;
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: `${prefix}-ingest`, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({
  name: stream,
  subjects: [`${prefix}.ingest.>`],
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  duplicate_window: 120_000_000_000,
});
const js = jetstream(nc);

const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
app.post("/ingest", async (request, reply) => {
  const body = request.body as { eventType: string; payload: Record<string, unknown> };
  const messageId = `msg_${randomBytes(10).toString("hex")}`;
  await js.publish(`${prefix}.ingest.${messageId}`, JSON.stringify({ id: messageId, ...body }), { msgID: messageId });
  return reply.status(202).send({ messageId, status: "accepted" });
});
const url = await app.listen({ port: 0, host: "127.0.0.1" });

serve({}, { url }, async () => {
  await app.close();
  await jsm.streams.delete(stream).catch(() => false);
  await nc.close();
});
