import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { serve } from "../lib/rpc.js";

/** ceiling.publish: pipelined JetStream publishes of 1 KiB from one process (`window` unacked at a time). */
const prefix = process.env.BENCH_CEILING_PREFIX!;
const stream = `${prefix.toUpperCase()}_PUBLISH`;
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: `${prefix}-publish`, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: stream, subjects: [`${prefix}.publish.>`], storage: StorageType.File, retention: RetentionPolicy.Limits });
const js = jetstream(nc);

async function run({ durationS, window = 256 }: { durationS: number; window?: number }) {
  const payload = new TextEncoder().encode("x".repeat(1024));
  let acked = 0;
  let failed = 0;
  let n = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const lane = async () => {
    while (performance.now() < deadline) {
      try {
        await js.publish(`${prefix}.publish.${n++ % 1000}`, payload);
        acked++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { acked, failed, seconds, rate: acked / seconds, window };
}

serve({ run }, {}, async () => {
  await jsm.streams.delete(stream).catch(() => false);
  await nc.close();
});
