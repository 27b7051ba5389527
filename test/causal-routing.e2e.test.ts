import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventData } from "../contracts/events.js";
import { createTopology } from "../streams/topology.js";
import { readAllEvents } from "./support/nats.js";
import { ADMIN_TOKEN, apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

const ROUNDS = 300;

describe("causal routing: an endpoint created just before an event is always its target", () => {
  let zen: TestPlatform;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    zen = await startTestPlatform();
  });
  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it(`routes each of ${ROUNDS} events to the endpoint registered right before it, with no pause`, async () => {
    const admin = apiClient(zen.url, { token: ADMIN_TOKEN });
    const tenantId = (await admin("POST", "/v1/tenants", { name: "Causal" })).body.id as string;
    const key = (await admin("POST", `/v1/tenants/${tenantId}/api-keys`, { name: "k", scopes: ["ingest", "webhooks:write"] })).body.key as string;
    const tenant = apiClient(zen.url, { token: key, tenantId });
    const expected = new Map<string, string>();
    for (let round = 0; round < ROUNDS; round++) {
      const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url(`/r/${round}`), eventTypes: [`causal.r${round}`] });
      expect(endpoint.status).toBe(201);
      const ingested = await tenant("POST", "/v1/webhooks/ingest", { eventType: `causal.r${round}`, payload: { round } });
      expect(ingested.status).toBe(202);
      expected.set(ingested.body.messageId, endpoint.body.id);
    }
    const topology = createTopology(zen.config.streamPrefix);
    let decisions: Array<{ messageId: string; data: EventData<"routing.decided"> }> = [];
    await eventually(
      async () => {
        const events = await readAllEvents(zen.platform.streams, topology);
        decisions = events
          .filter((e) => e.envelope.type === "routing.decided")
          .map((e) => ({ messageId: e.envelope.aggregateId, data: e.envelope.data as EventData<"routing.decided"> }));
        return decisions.length === ROUNDS;
      },
      60_000,
      "every message to be routed",
    );
    for (const { messageId, data } of decisions) {
      expect(data.targets.map((t) => t.endpointId)).toEqual([expected.get(messageId)]);
    }
    await eventually(() => new Set(receiver.received.map((r) => r.webhookId)).size === ROUNDS, 60_000, "every delivery");
  });
});
