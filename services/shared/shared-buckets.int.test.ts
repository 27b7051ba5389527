import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectStreams, type Streams } from "../../streams/connection.js";
import { createTopology } from "../../streams/topology.js";
import { deleteTestStream, TEST_NATS_URL, uniquePrefix } from "../../test/support/nats.js";
import { startPrivateNats, type PrivateNats } from "../../test/support/private-nats.js";
import { createSharedBuckets, type SharedBuckets } from "./shared-buckets.js";

const bucket = { capacity: 100, refillPerSecond: 100 };

describe("shared buckets while NATS is away", () => {
  let nats: PrivateNats;
  let streams: Streams;
  let buckets: SharedBuckets;

  beforeAll(async () => {
    nats = await startPrivateNats();
    streams = await connectStreams(nats.url, "shared-buckets-test");
    buckets = await createSharedBuckets(streams.nc, createTopology(uniquePrefix()), "ingress");
  });
  afterAll(async () => {
    await streams?.nc.close();
    await nats?.cleanup();
  });

  it("answers from this process's own bucket within a second instead of failing, and from the shared one once NATS is back", async () => {
    expect((await buckets.take("ten_a", bucket)).allowed).toBe(true);
    await nats.stop({ kill: true });
    const started = Date.now();
    const takes = await Promise.all(Array.from({ length: 20 }, () => buckets.take("ten_a", bucket)));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(takes.every((take) => take.allowed)).toBe(true);
    // The local bucket holds the limit too: past its capacity, a take is refused with a wait.
    const burst = await Promise.all(Array.from({ length: 150 }, () => buckets.take("ten_a", bucket)));
    expect(burst.filter((take) => !take.allowed).length).toBeGreaterThan(0);

    await nats.start();
    // Leased again from the shared record: a lease's serial counts from 1, the local bucket's is 0.
    const deadline = Date.now() + 15_000;
    let shared = false;
    while (!shared && Date.now() < deadline) {
      const take = await buckets.take("ten_b", bucket);
      shared = take.allowed && take.serial > 0;
      if (!shared) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(shared).toBe(true);
  });
});

describe("shared buckets taking many tokens at once (a request's bytes)", () => {
  let streams: Streams;
  const topology = createTopology(uniquePrefix());

  beforeAll(async () => {
    streams = await connectStreams(TEST_NATS_URL, "weighted-buckets-test");
  });
  afterAll(async () => {
    await streams?.nc.close();
    await deleteTestStream(topology.prefix);
  });

  it("takes a cost whole or not at all, shares the level between processes, and never takes a cost above the capacity", async () => {
    const bytes = { capacity: 10_000, refillPerSecond: 100 };
    // Two processes' buckets on one record.
    const first = await createSharedBuckets(streams.nc, topology, "payload_bytes");
    const second = await createSharedBuckets(streams.nc, topology, "payload_bytes");
    const takes = [];
    for (const buckets of [first, second, first, second]) takes.push(await buckets.take("ten_w", bytes, Date.now(), 3_000));
    expect(takes.map((take) => take.allowed)).toEqual([true, true, true, false]);
    const refused = takes[3]!;
    // 1,000 left, 2,000 more needed at 100 a second: about 20 s.
    expect(refused.allowed === false && refused.waitMs).toBeGreaterThan(15_000);
    expect((await second.take("ten_w", bytes, Date.now(), 500)).allowed).toBe(true);
    expect(await first.take("ten_w", bytes, Date.now(), 10_001)).toEqual({ allowed: false, waitMs: Number.POSITIVE_INFINITY });
  });
});
