import { describe, expect, it } from "vitest";
import type { Envelope } from "../../contracts/envelope.js";
import { GONE_REASON } from "../../domain/circuit/health.js";
import { classifyAttempt } from "../../domain/delivery/classify.js";
import type { EndpointCircuit, EndpointCommand } from "../../domain/endpoint/endpoint.js";
import type { EventStore, StoredEvent } from "../../streams/event-store.js";
import type { EndpointView } from "../../streams/registry-view.js";
import { createLogger } from "../shared/logger.js";
import { createEndpointHealth, type Cause } from "./endpoint-health.js";
import { effectiveDeliveryPolicy } from "../../domain/endpoint/record.js";

const T0 = Date.parse("2025-01-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

/** A store that records the endpoint commands handed to it. */
function fakeStore() {
  const handled: Array<{ command: EndpointCommand; causeId: string }> = [];
  const store = {
    handle: async (_ref: unknown, _decider: unknown, command: EndpointCommand, options: { causeId: string }) => {
      handled.push({ command, causeId: options.causeId });
      return { lastSeq: handled.length, envelopes: [], state: { status: "absent" } };
    },
  } as unknown as EventStore;
  return { store, handled };
}

const view = (circuit: EndpointCircuit = { state: "closed" }, status: "active" | "disabled" = "active"): EndpointView => ({
  endpointId: "ep_1",
  tenantId: "ten_1",
  createdAt: iso(T0),
  updatedAt: iso(T0),
  state: { status, url: "https://example.com/", eventTypes: ["*"], secret: "enc:v1:k:x", circuit },
});
const cause: Cause = {
  stored: { seq: 1, envelope: { id: "evt_1", correlationId: "req_1" } as Envelope } as StoredEvent,
  deliveryId: "dlv_1",
  attempt: 1,
};
const http = (statusCode: number) => classifyAttempt({ statusCode });

function world(options: { disableAfterMs?: number } = {}) {
  let now = T0;
  const { store, handled } = fakeStore();
  const health = createEndpointHealth({ store, logger: createLogger("silent"), now: () => new Date(now), ...options });
  /** One attempt to the endpoint as `seen`, answered `status`. */
  const attempt = async (status: number, seen = view()) => health.attempted(seen, http(status), await health.admit(seen, cause), cause);
  return { health, handled, attempt, advance: (ms: number) => (now += ms), commands: () => handled.map((h) => h.command.type) };
}

describe("endpoint health in the dispatcher", () => {
  it("opens the circuit after 5 transient failures and holds attempts until it half-opens", async () => {
    const w = world();
    for (let i = 0; i < 5; i++) {
      expect(await w.health.admit(view(), cause)).toEqual({ allowed: true, probe: false });
      await w.attempt(500);
      w.advance(100);
    }
    const halfOpenAt = iso(T0 + 400 + 60_000);
    expect(w.handled).toEqual([
      {
        command: { type: "OpenCircuit", consecutiveFailures: 5, reason: "HTTP 500 from receiver", failingSince: iso(T0), halfOpenAt },
        causeId: `ep_1:circuit:opened:${halfOpenAt}`,
      },
    ]);
    expect(await w.health.admit(view(), cause)).toEqual({ allowed: false, retryInMs: 59_900 });
    w.advance(59_900);
    const probe = await w.health.admit(view(), cause);
    expect(probe).toEqual({ allowed: true, probe: true });
    await w.health.attempted(view(), http(200), probe, cause);
    expect(w.commands()).toEqual(["OpenCircuit", "HalfOpenCircuit", "CloseCircuit"]);
  });

  it("does not count 4xx answers", async () => {
    const w = world();
    for (let i = 0; i < 10; i++) await w.attempt(400);
    expect(w.handled).toEqual([]);
  });

  it("takes over a circuit another dispatcher opened, probing once it is due", async () => {
    const w = world();
    const open: EndpointCircuit = { state: "open", halfOpenAt: iso(T0 + 30_000), failingSince: iso(T0 - 1_000), consecutiveFailures: 5 };
    expect(await w.health.admit(view(open), cause)).toEqual({ allowed: false, retryInMs: 30_000 });
    w.advance(30_000);
    expect(await w.health.admit(view(open), cause)).toEqual({ allowed: true, probe: true });
    expect(w.handled.map((h) => h.causeId)).toEqual([`ep_1:circuit:half_opened:${open.halfOpenAt}`]);
  });

  it("forgets its failures when the endpoint is re-enabled (closed again in the registry)", async () => {
    const w = world();
    for (let i = 0; i < 5; i++) await w.attempt(500);
    const recorded: EndpointCircuit = { state: "open", halfOpenAt: iso(T0 + 60_000), failingSince: iso(T0), consecutiveFailures: 5 };
    expect((await w.health.admit(view(recorded, "disabled"), cause)).allowed).toBe(false);
    expect(await w.health.admit(view({ state: "closed" }), cause)).toEqual({ allowed: true, probe: false });
  });

  it("disables an endpoint that answered 410", async () => {
    const w = world();
    await w.attempt(410);
    expect(w.handled).toEqual([{ command: { type: "DisableEndpoint", reason: GONE_REASON }, causeId: "ep_1:disabled:gone:dlv_1:1" }]);
  });

  it("disables an endpoint failing without a break for longer than disableAfterMs", async () => {
    const w = world({ disableAfterMs: 10_000 });
    await w.attempt(503);
    w.advance(10_000);
    await w.attempt(503);
    expect(w.commands()).toEqual([]);
    w.advance(1);
    await w.attempt(503);
    expect(w.handled).toEqual([
      {
        command: { type: "DisableEndpoint", reason: `failing continuously since ${iso(T0)} (longer than 10 seconds)` },
        causeId: `ep_1:disabled:unhealthy:${iso(T0)}`,
      },
    ]);
  });

  it("frees the probe slot of an attempt put back before it was sent", async () => {
    const w = world();
    const halfOpen: EndpointCircuit = { state: "half_open", halfOpenAt: iso(T0), failingSince: iso(T0), consecutiveFailures: 5 };
    const probes = [];
    for (let i = 0; i < 3; i++) probes.push(await w.health.admit(view(halfOpen), cause));
    expect(probes).toEqual(Array(3).fill({ allowed: true, probe: true }));
    // The rest wait for the probes' answers (the endpoint's attempt timeout, the probes having just gone), at most 2 s.
    expect(await w.health.admit(view(halfOpen), cause)).toEqual({ allowed: false, retryInMs: Math.min(2_000, effectiveDeliveryPolicy(view(halfOpen).state).timeoutMs) });
    w.health.release(view(halfOpen), probes[0]!);
    expect(await w.health.admit(view(halfOpen), cause)).toEqual({ allowed: true, probe: true });
  });

  it("says how long it would turn an attempt away, without changing anything, so the dispatcher can put it back before any read", async () => {
    const w = world();
    const halfOpen: EndpointCircuit = { state: "half_open", halfOpenAt: iso(T0), failingSince: iso(T0), consecutiveFailures: 5 };
    expect(w.health.refusedForMs(view(halfOpen))).toBeUndefined(); // nothing known here yet: it may go
    const probes = [];
    for (let i = 0; i < 3; i++) probes.push(await w.health.admit(view(halfOpen), cause));
    const timeoutMs = Math.min(2_000, effectiveDeliveryPolicy(view(halfOpen).state).timeoutMs);
    expect(w.health.refusedForMs(view(halfOpen))).toBe(timeoutMs);
    expect(w.health.refusedForMs(view(halfOpen))).toBe(timeoutMs);
    w.health.release(view(halfOpen), probes[0]!);
    expect(w.health.refusedForMs(view(halfOpen))).toBeUndefined();
    expect(await w.health.admit(view(halfOpen), cause)).toEqual({ allowed: true, probe: true });
  });
});
