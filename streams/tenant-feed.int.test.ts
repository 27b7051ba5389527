import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestStreams, TEST_NATS_URL, type TestStreams } from "../test/support/nats.js";
import { eventually } from "../test/support/receiver.js";
import { testContext } from "../test/support/spine.js";
import { connectStreams } from "./connection.js";
import { createEventStore } from "./event-store.js";
import { createTenantFeed, type FeedEvent } from "./tenant-feed.js";

describe("a tenant's live feed", () => {
  let streams: TestStreams;

  beforeAll(async () => {
    streams = await createTestStreams();
  });
  afterAll(() => streams.cleanup());

  const consumerCount = async () => (await streams.jsm.streams.info(streams.topology.stream)).state.consumer_count;

  it("brings the tenant's new events; a consumer left behind by a process that died goes after its inactive threshold", async () => {
    const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    const before = await consumerCount();
    // The api process: its own connection, which dies without deleting anything.
    const api = await connectStreams(TEST_NATS_URL, "feed-test-api");
    const feed = createTenantFeed({ js: api.js, jsm: api.jsm, topology: streams.topology, inactiveMs: 1_500 });
    const following = new AbortController();
    const got: FeedEvent[] = [];
    const tailing = (async () => {
      for await (const event of feed.follow("ten_f", undefined, following.signal)) got.push(event);
    })().catch(() => undefined);
    await eventually(async () => (await consumerCount()) === before + 1, 5_000, "the follower's consumer");
    const { lastSeq } = await store.append({ tenantId: "ten_f", aggregateType: "tenant", aggregateId: "ten_f" }, [{ type: "tenant.created", data: { name: "f" } }], {
      expectedVersion: 0,
      prevHash: null,
      causeId: "feed-f",
      context: testContext(),
    });
    await eventually(() => got.length === 1, 5_000, "the event in the feed");
    expect(got[0]!.seq).toBe(lastSeq);

    await api.nc.close(); // the process dies: nobody deletes the consumer
    await eventually(async () => (await consumerCount()) === before, 10_000, "the orphaned consumer to go by itself");
    following.abort();
    await tailing;
  });
});
