import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectStreams, type Streams } from "../../streams/connection.js";
import { createTopology } from "../../streams/topology.js";
import { uniquePrefix } from "../../test/support/nats.js";
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
