import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventStore, type EventStore } from "../../streams/event-store.js";
import { createRegistryView, type RegistryView } from "../../streams/registry-view.js";
import { createTestStreams, type TestStreams } from "../../test/support/nats.js";
import { eventually } from "../../test/support/receiver.js";
import { quietLogger, secretBox, seed, seedDelivery } from "../../test/support/spine.js";
import type { HttpSender, OutboundRequest, SendResult } from "../outbound/http-sender.js";
import { createDispatcher } from "./dispatcher.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOISY = "ten_noisy";
const QUIET = "ten_quiet";

/** A sender whose requests hang until released, counting those in flight per tenant (the URL's first segment). */
function holdingSender() {
  const inFlight = new Map<string, number>();
  const most = new Map<string, number>();
  const held: Array<() => void> = [];
  const sender: HttpSender = {
    send(request: OutboundRequest): Promise<SendResult> {
      const tenant = new URL(request.url).pathname.split("/")[1]!;
      inFlight.set(tenant, (inFlight.get(tenant) ?? 0) + 1);
      most.set(tenant, Math.max(most.get(tenant) ?? 0, inFlight.get(tenant)!));
      return new Promise((resolve) =>
        held.push(() => {
          inFlight.set(tenant, inFlight.get(tenant)! - 1);
          resolve({ startedAt: new Date(), latencyMs: 5, statusCode: 200 });
        }),
      );
    },
    close: async () => undefined,
  };
  return {
    sender,
    inFlight: (tenant: string) => inFlight.get(tenant) ?? 0,
    most: (tenant: string) => most.get(tenant) ?? 0,
    releaseAll: () => {
      for (const release of held.splice(0)) release();
    },
  };
}

describe("a tenant's share of a dispatcher's attempts in flight", () => {
  let streams: TestStreams;
  let store: EventStore;
  let view: RegistryView;

  beforeAll(async () => {
    streams = await createTestStreams();
    store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology: streams.topology });
    // The operator set the noisy tenant's maxAttemptsInFlight to 2; the quiet one has the platform's share.
    await seed(store)(NOISY, "tenant", NOISY, [
      { type: "tenant.created", data: { name: "noisy" } },
      { type: "tenant.limits_set", data: { maxAttemptsInFlight: 2 } },
    ]);
    await seed(store)(QUIET, "tenant", QUIET, [{ type: "tenant.created", data: { name: "quiet" } }]);
    for (const [tenantId, endpointId] of [
      [NOISY, "ep_noisy1"],
      [NOISY, "ep_noisy2"],
      [NOISY, "ep_noisy3"],
      [QUIET, "ep_quiet"],
    ] as const) {
      await seed(store)(tenantId, "endpoint", endpointId, [
        { type: "endpoint.registered", data: { url: `https://hooks.example.invalid/${tenantId}/${endpointId}`, eventTypes: ["*"], secret: secretBox.encrypt(SECRET) } },
      ]);
    }
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology: streams.topology });
    await view.start();
  });
  afterAll(async () => {
    await view.stop();
    await streams.cleanup();
  });

  /** A dispatcher of 16 slots, 4 per endpoint, sending with `sender`. */
  const startDispatcher = async (sender: HttpSender, maxHandled?: number) => {
    const dispatcher = createDispatcher({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology: streams.topology,
      logger: quietLogger(),
      sender,
      secretBox,
      concurrency: 16,
      concurrencyPerEndpoint: 4,
      maxHandled,
    });
    await dispatcher.start();
    return dispatcher;
  };

  const schedule = (tenantId: string, endpointId: string, n: number) =>
    seedDelivery(store)(tenantId, `dlv_${endpointId}${n}_${endpointId.slice(3)}`, {
      messageId: `msg_${endpointId}${n}`,
      endpointId,
      eventType: "share.test",
      payload: { n },
      registrySeq: view.appliedSeq(),
    });

  it("holds a tenant to the operator's maxAttemptsInFlight while another tenant's attempts go out", async () => {
    const holding = holdingSender();
    // Without the tenant's limit, its two endpoints could have 8 attempts in flight.
    const dispatcher = await startDispatcher(holding.sender);
    try {
      for (let n = 0; n < 4; n++) {
        await schedule(NOISY, "ep_noisy1", n);
        await schedule(NOISY, "ep_noisy2", n);
      }
      await eventually(async () => holding.inFlight(NOISY) === 2, 10_000, "the noisy tenant's share to be taken");
      await schedule(QUIET, "ep_quiet", 0);
      await schedule(QUIET, "ep_quiet", 1);
      await eventually(async () => holding.inFlight(QUIET) === 2, 10_000, "the quiet tenant's attempts to go out beside it");
      expect(holding.inFlight(NOISY)).toBe(2);
      // Released, every delivery goes out, the noisy tenant never more than two at once.
      const released = setInterval(holding.releaseAll, 50);
      try {
        await eventually(async () => holding.most(QUIET) === 2 && holding.inFlight(NOISY) + holding.inFlight(QUIET) === 0, 10_000, "every attempt to finish");
      } finally {
        clearInterval(released);
      }
      expect(holding.most(NOISY)).toBe(2);
    } finally {
      const releasing = setInterval(holding.releaseAll, 50);
      await dispatcher.stop();
      clearInterval(releasing);
    }
  });

  it("leaves another tenant room in the window of events in hand, however many of one tenant's deliveries wait for its share", async () => {
    const holding = holdingSender();
    // Twelve events in hand at most: the noisy tenant's 3 × 4 slots (2 attempts going, 10 waiting for its share) would be all of them.
    const dispatcher = await startDispatcher(holding.sender, 12);
    try {
      for (let n = 10; n < 14; n++) {
        for (const endpointId of ["ep_noisy1", "ep_noisy2", "ep_noisy3"]) await schedule(NOISY, endpointId, n);
      }
      await eventually(async () => holding.inFlight(NOISY) === 2, 10_000, "the noisy tenant's share to be taken");
      await schedule(QUIET, "ep_quiet", 10);
      await schedule(QUIET, "ep_quiet", 11);
      await eventually(async () => holding.inFlight(QUIET) === 2, 10_000, "the quiet tenant's attempts to go out beside it");
      const released = setInterval(holding.releaseAll, 50);
      try {
        await eventually(async () => holding.most(NOISY) === 2 && holding.inFlight(NOISY) + holding.inFlight(QUIET) === 0, 15_000, "every attempt to finish");
      } finally {
        clearInterval(released);
      }
    } finally {
      const releasing = setInterval(holding.releaseAll, 50);
      await dispatcher.stop();
      clearInterval(releasing);
    }
  });
});
