import { ConnectionError, headers } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivateNats, type PrivateNats } from "../test/support/private-nats.js";
import { eventually } from "../test/support/receiver.js";
import { testContext } from "../test/support/spine.js";
import { connectStreams, ensureEventStream, type Streams } from "./connection.js";
import { createEventStore, type EventStore } from "./event-store.js";
import { createJetStreamAppender } from "./jetstream-appender.js";
import { createRegistryView } from "./registry-view.js";
import { createTenantFeed, type FeedEvent } from "./tenant-feed.js";
import { createTopology } from "./topology.js";

describe("across a NATS restart (killed, so no shutdown notice reaches the pulls)", () => {
  let nats: PrivateNats;
  let streams: Streams;
  let store: EventStore;
  const topology = createTopology("viewrestart");

  beforeAll(async () => {
    nats = await startPrivateNats();
    streams = await connectStreams(nats.url, "view-restart-test");
    await ensureEventStream(streams.jsm, topology);
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology });
  });
  afterAll(async () => {
    await streams?.nc.close();
    await nats?.cleanup();
  });

  const createTenant = (id: string) =>
    store.append({ tenantId: id, aggregateType: "tenant", aggregateId: id }, [{ type: "tenant.created", data: { name: id } }], {
      expectedVersion: 0,
      prevHash: null,
      causeId: `create-${id}`,
      context: testContext(),
    });

  /** Kills and restarts the server, then stores `count` tenants after it: returns the last one's sequence. */
  const restartThenCreate = async (prefix: string, count: number) => {
    await nats.stop({ kill: true });
    await nats.start();
    await eventually(async () => (await createTenant(`${prefix}0`).catch(() => undefined)) !== undefined, 15_000, "an append after the restart");
    // The recreated consumer's first pull asks for as many messages as it got before the restart: one.
    let last = { lastSeq: 0 };
    for (let i = 1; i < count; i++) last = await createTenant(`${prefix}${i}`);
    return last.lastSeq;
  };

  it("the registry view applies registry changes within a couple of seconds of the server's return, in order, missing none", async () => {
    const view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology });
    const before = await createTenant("ten_before");
    await view.start();
    try {
      expect(await view.waitFor(before.lastSeq, 2_000)).toBe(true);

      const lastSeq = await restartThenCreate("ten_after", 6);
      const stored = Date.now();
      // @nats-io/jetstream alone would deliver nothing more for about 7.5 s (two missed heartbeats).
      expect(await view.waitFor(lastSeq, 3_000)).toBe(true);
      expect(Date.now() - stored).toBeLessThan(3_000);
      expect(view.tenant("ten_before")).toMatchObject({ status: "active" });
      for (let i = 0; i <= 5; i++) expect(view.tenant(`ten_after${i}`)).toMatchObject({ status: "active" });
      expect(view.appliedSeq()).toBe(lastSeq);
      expect(view.following()).toBe(true);
    } finally {
      await view.stop();
    }
  });

  it("a tenant's event feed goes on within a couple of seconds of the server's return, each event once, in order", async () => {
    const feed = createTenantFeed({ js: streams.js, jsm: streams.jsm, topology });
    const following = new AbortController();
    const got: FeedEvent[] = [];
    const tailing = (async () => {
      for await (const event of feed.follow("ten_feed", undefined, following.signal)) got.push(event);
    })();
    try {
      const first = await createTenant("ten_feed");
      await eventually(() => got.length === 1, 5_000, "the first event in the feed");
      expect(got[0]!.seq).toBe(first.lastSeq);

      const tenantEvent = (id: string) =>
        store.append({ tenantId: "ten_feed", aggregateType: "tenant", aggregateId: id }, [{ type: "tenant.created", data: { name: id } }], {
          expectedVersion: 0,
          prevHash: null,
          causeId: `feed-${id}`,
          context: testContext(),
        });
      await nats.stop({ kill: true });
      await nats.start();
      await eventually(async () => (await tenantEvent("t0").catch(() => undefined)) !== undefined, 15_000, "an append after the restart");
      let last = 0;
      for (let i = 1; i < 6; i++) last = (await tenantEvent(`t${i}`)).lastSeq;
      const stored = Date.now();
      await eventually(() => got.at(-1)?.seq === last, 3_000, "the feed to bring every event stored after the restart");
      expect(Date.now() - stored).toBeLessThan(3_000);
      const seqs = got.map((event) => event.seq);
      expect(seqs).toHaveLength(7);
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    } finally {
      following.abort();
      await tailing;
    }
  });

  it("the appender refuses a publish at once while NATS is away, rather than buffer it to be stored after its caller was told it failed", async () => {
    const appender = createJetStreamAppender(streams.nc, 30_000);
    const subject = topology.aggregateSubject("ten_away", "tenant", "ten_away");
    const disconnected = (async () => {
      for await (const status of streams.nc.status()) if (status.type === "disconnect") return;
    })();
    await nats.stop({ kill: true });
    await disconnected;
    const started = Date.now();
    const refused = await appender.publish(subject, "{}", headers()).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(100);

    await nats.start();
    await eventually(async () => (await appender.publish(subject, "{}", headers()).catch(() => undefined)) !== undefined, 15_000, "a publish after the restart");
    // Only the publish after the restart was stored: the subject's first message is its last.
    const first = await streams.jsm.direct.getMessage(topology.stream, { seq: 1, next_by_subj: subject });
    const last = await streams.jsm.direct.getMessage(topology.stream, { last_by_subj: subject });
    expect(first?.seq).toBeDefined();
    expect(first?.seq).toBe(last?.seq);
  });
});
