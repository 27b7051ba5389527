import { afterAll, describe, expect, it } from "vitest";
import { createTopology } from "../../streams/topology.js";
import { createTestStreams, deleteTestStream, uniquePrefix } from "../../test/support/nats.js";
import { createSecretBox } from "../shared/secret-box.js";
import { createSharedBuckets } from "../shared/shared-buckets.js";
import { createEventIdClaims } from "./event-ids.js";
import { createIdempotencyStore } from "./idempotency-store.js";
import { createIngressLimiter } from "./ingress-limit.js";

const prefixes: string[] = [];
const streams = await createTestStreams();
afterAll(async () => {
  await Promise.all(prefixes.map(deleteTestStream));
  await streams.cleanup();
});

const openers = {
  "ingest event ids": createEventIdClaims,
  "idempotency keys": (nc: typeof streams.nc, topology: ReturnType<typeof createTopology>) => createIdempotencyStore(nc, topology, { box: createSecretBox(undefined) }),
  "ingress buckets": createIngressLimiter,
  "outbound buckets": (nc: typeof streams.nc, topology: ReturnType<typeof createTopology>) => createSharedBuckets(nc, topology, "outbound"),
};

describe.each(Object.entries(openers))("the %s KV bucket", (_name, open) => {
  const topologyWith = (replicas: number) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    return createTopology(prefix, replicas);
  };

  it("is created with the platform's replica count (ZEN_STREAM_REPLICAS)", async () => {
    await expect(open(streams.nc, topologyWith(1))).resolves.toBeDefined();
    // This machine's single server cannot hold three replicas: the count reaches the server.
    await expect(open(streams.nc, topologyWith(3))).rejects.toThrow(/replica|peer|resources/i);
  });
});
