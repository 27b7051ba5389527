import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_HEADERS } from "../contracts/envelope.js";
import { createTestStreams, type TestStreams } from "../test/support/nats.js";
import { secretBox, testContext } from "../test/support/spine.js";
import { createEventStore, type EventStore } from "./event-store.js";
import { createRegistryView } from "./registry-view.js";

describe("registry view", () => {
  let streams: TestStreams;
  let store: EventStore;
  const seqs: number[] = [];

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    const ref = { tenantId: "ten_v", aggregateType: "endpoint" as const, aggregateId: "ep_v" };
    const secret = secretBox.encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let version = 0;
    for (const [index, event] of [
      { type: "endpoint.registered" as const, data: { url: "https://example.com/a", eventTypes: ["a.*"], secret } },
      { type: "endpoint.updated" as const, data: { eventTypes: ["b.*"] } },
      { type: "endpoint.updated" as const, data: { active: false } },
    ].entries()) {
      const loaded = await store.load(ref, { initialState: () => null, evolve: () => null, decide: () => [] }, { fresh: true });
      const { lastSeq } = await store.append(ref, [event], { expectedVersion: version, prevHash: loaded.lastHash, causeId: `v${index}`, context: testContext() });
      version = lastSeq;
      seqs.push(lastSeq);
    }
  });
  afterAll(() => streams.cleanup());

  it("answers as the registry stood at any sequence, and forgets only versions no later message needs", async () => {
    const view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology, keepHistory: true });
    await view.start();
    try {
      expect(view.endpointsAsOf("ten_v", seqs[0]! - 1)).toEqual([]);
      expect(view.endpointsAsOf("ten_v", seqs[0]!)[0]!.state.eventTypes).toEqual(["a.*"]);
      expect(view.endpointsAsOf("ten_v", seqs[1]!)[0]!.state.eventTypes).toEqual(["b.*"]);
      expect(view.endpointsAsOf("ten_v", seqs[2]!)[0]!.state.status).toBe("disabled");
      view.forgetBefore(seqs[1]! + 0);
      expect(view.endpointsAsOf("ten_v", seqs[1]!)[0]!.state.eventTypes).toEqual(["b.*"]);
      expect(view.endpointsAsOf("ten_v", seqs[2]!)[0]!.state.status).toBe("disabled");
      expect(view.endpointsAsOf("ten_v", seqs[0]!)).toEqual([]);
      expect(view.endpoint("ten_v", "ep_v")?.state.status).toBe("disabled");
    } finally {
      await view.stop();
    }
  });

  it("keeps only the latest version when history is not needed", async () => {
    const view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    expect(view.following()).toBe(false);
    await view.start();
    try {
      expect(view.following()).toBe(true);
      expect(view.endpointsAsOf("ten_v", seqs[0]!)).toEqual([]);
      expect(view.endpoint("ten_v", "ep_v")?.state.status).toBe("disabled");
      expect(await view.waitFor(seqs[2]!, 100)).toBe(true);
      expect(await view.waitFor(seqs[2]! + 100, 100)).toBe(false);
    } finally {
      await view.stop();
    }
    expect(view.following()).toBe(false);
  });

  it("re-opens after a body it cannot read, then applies it and what came after", async () => {
    // The view reads registry bodies only through `jsm.direct.getMessage`: the first read fails.
    let failures = 1;
    const warnings: string[] = [];
    const jsm = {
      direct: {
        getMessage: (...args: Parameters<typeof streams.jsm.direct.getMessage>) =>
          failures-- > 0 ? Promise.reject(new Error("direct get refused")) : streams.jsm.direct.getMessage(...args),
      },
    } as unknown as typeof streams.jsm;
    const view = createRegistryView({
      js: streams.js,
      jsm,
      topology: streams.topology,
      logger: { warn: (_: unknown, message: string) => warnings.push(message), error: () => undefined },
    });
    const started = view.start();
    try {
      await started;
      expect(view.endpoint("ten_v", "ep_v")?.state.status).toBe("disabled");
      expect(warnings).toEqual(["registry view: its consume failed; re-opening it after the last applied event"]);
      expect(view.following()).toBe(true);
      // And it goes on following: a later registry event arrives.
      const ref = { tenantId: "ten_v", aggregateType: "endpoint" as const, aggregateId: "ep_v" };
      const loaded = await store.load(ref, { initialState: () => null, evolve: () => null, decide: () => [] }, { fresh: true });
      const { lastSeq } = await store.append(ref, [{ type: "endpoint.updated" as const, data: { active: true } }], {
        expectedVersion: loaded.version,
        prevHash: loaded.lastHash,
        causeId: "v-after-failure",
        context: testContext(),
      });
      expect(await view.waitFor(lastSeq, 5_000)).toBe(true);
      expect(view.endpoint("ten_v", "ep_v")?.state.status).toBe("active");
    } finally {
      await view.stop();
    }
  });

  it("skips a registry event it cannot fold, with an error line, and goes on following", async () => {
    const errors: Array<{ seq?: number }> = [];
    const view = createRegistryView({
      js: streams.js,
      jsm: streams.jsm,
      topology: streams.topology,
      logger: { warn: () => undefined, error: (details) => errors.push(details) },
    });
    await view.start();
    try {
      // A registry event whose body is no envelope at all: on the endpoint's own subject, so it sits on the view's branch.
      const headers = natsHeaders();
      headers.set(EVENT_HEADERS.aggregateType, "endpoint");
      headers.set(EVENT_HEADERS.type, "endpoint.updated");
      const poison = await streams.js.publish(`${streams.topology.prefix}.evt.ten_v.cmd.endpoint.ep_poison`, "{ not json", { headers });
      const ref = { tenantId: "ten_v", aggregateType: "endpoint" as const, aggregateId: "ep_after" };
      const { lastSeq } = await store.append(
        ref,
        [
          {
            type: "endpoint.registered" as const,
            data: { url: "https://example.com/after", eventTypes: ["c.*"], secret: secretBox.encrypt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") },
          },
        ],
        { expectedVersion: 0, prevHash: null, causeId: "v-after-poison", context: testContext() },
      );
      expect(await view.waitFor(lastSeq, 5_000)).toBe(true);
      expect(view.endpoint("ten_v", "ep_after")?.state.eventTypes).toEqual(["c.*"]);
      expect(errors.map((details) => details.seq)).toEqual([poison.seq]);
    } finally {
      await view.stop();
    }
  });
});
