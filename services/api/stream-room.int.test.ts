import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { ADMIN_TOKEN, createTenantWithKey, idempotencyHeader, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h?.stop());

describe("the event stream's size cap (ZEN_STREAM_MAX_BYTES)", () => {
  it("refuses new messages with 503 once the stream holds its cap, and still takes registry changes", async () => {
    const t = await createTenantWithKey(h, ["ingest", "webhooks:write", "webhooks:read"], "Full");
    const { state } = await h.streams.jsm.streams.info(h.streams.topology.stream);
    const app = await buildApp({ ...h.deps, config: { ...h.deps.config, streamMaxBytes: state.bytes + 20_000 } });
    try {
      const headers = { authorization: `Bearer ${t.key}`, "x-tenant-id": t.tenantId, "content-type": "application/json" };
      const ingest = () =>
        app.inject({ method: "POST", url: "/v1/webhooks/ingest", headers, payload: JSON.stringify({ eventType: "a.b", payload: { text: "x".repeat(2_000) } }) });
      expect((await ingest()).statusCode).toBe(202);
      // The size is read again every 2 s: ingest until the cap is seen (bounded).
      let refused: Awaited<ReturnType<typeof ingest>> | undefined;
      for (let n = 0; n < 100 && !refused; n++) {
        const answer = await ingest();
        if (answer.statusCode === 503) refused = answer;
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(refused?.json().error).toMatchObject({ code: "dependency_unavailable", message: expect.stringMatching(/event stream is full/) });
      expect(refused?.headers["retry-after"]).toBe("60");
      // What is already accepted goes on; the registry still changes.
      const endpoint = await app.inject({
        method: "POST",
        url: "/v1/webhooks/registry",
        headers: { ...headers, ...idempotencyHeader("POST") },
        payload: JSON.stringify({ url: "https://example.com/full", eventTypes: ["*"] }),
      });
      expect(endpoint.statusCode).toBe(201);
      const keys = await app.inject({ method: "GET", url: `/v1/tenants/${t.tenantId}/api-keys`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(keys.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
