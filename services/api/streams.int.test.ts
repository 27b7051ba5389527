import { type IncomingHttpHeaders, request } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Envelope } from "../../contracts/envelope.js";
import { verifyChain } from "../../streams/envelope.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let a: Awaited<ReturnType<typeof createTenantWithKey>>;
let b: Awaited<ReturnType<typeof createTenantWithKey>>;
let baseUrl: string;
const SCOPES = ["audit:read", "deliveries:read", "webhooks:write"];

beforeAll(async () => {
  h = await startApiHarness({ feedHeartbeatMs: 200 });
  a = await createTenantWithKey(h, SCOPES, "A");
  b = await createTenantWithKey(h, SCOPES, "B");
  baseUrl = await h.app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(() => h?.stop());

type Line = { seq: number; event: Envelope };
const register = (tenant: typeof a, path: string) =>
  h.call({ method: "POST", url: "/v1/webhooks/registry", token: tenant.key, tenantId: tenant.tenantId, body: { url: `https://example.com/${path}`, eventTypes: ["*"] } });
const exportEvents = async (tenant: typeof a, query = "", asTenant = tenant.tenantId) => {
  const res = await h.call({ method: "GET", url: `/v1/streams/events${query}`, token: tenant.key, tenantId: asTenant });
  return {
    res,
    lines:
      res.statusCode === 200
        ? res.body
            .split("\n")
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Line)
        : [],
  };
};

describe("GET /v1/streams/events", () => {
  it("answers the tenant's own events as NDJSON in stream order, each envelope as stored", async () => {
    const first = (await register(a, "a1")).json().id as string;
    await register(a, "a2");
    await register(b, "b1");
    const { res, lines } = await exportEvents(a);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("application/x-ndjson");
    expect(lines.length).toBeGreaterThanOrEqual(4); // tenant, key, two endpoints
    expect(lines.every((line) => line.event.tenantId === a.tenantId)).toBe(true);
    const seqs = lines.map((line) => line.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(lines.map((line) => line.event.type)).toContain("endpoint.registered");
    const endpointEvents = lines.filter((line) => line.event.aggregateId === first).map((line) => line.event);
    expect(verifyChain(endpointEvents)).toEqual({ ok: true });
  });

  it("pages with afterSeq, and filters by aggregate and time", async () => {
    const { lines: all } = await exportEvents(a);
    const { lines: page1 } = await exportEvents(a, "?limit=2");
    const { lines: page2 } = await exportEvents(a, `?limit=1000&afterSeq=${page1.at(-1)!.seq}`);
    expect([...page1, ...page2].map((line) => line.seq)).toEqual(all.map((line) => line.seq));

    const endpointId = all.find((line) => line.event.type === "endpoint.registered")!.event.aggregateId;
    const { lines: one } = await exportEvents(a, `?aggregate=${endpointId}`);
    expect(one.length).toBeGreaterThan(0);
    expect(one.every((line) => line.event.aggregateId === endpointId)).toBe(true);

    const later = new Date(Date.parse(all.at(-1)!.event.occurredAt) + 1_000);
    await new Promise((resolve) => setTimeout(resolve, later.getTime() - Date.now() + 50));
    const newest = (await register(a, "a3")).json().id as string;
    const { lines: since } = await exportEvents(a, `?since=${later.toISOString()}`);
    expect(since.map((line) => line.event.aggregateId)).toEqual([newest]);
    const { lines: until } = await exportEvents(a, `?until=${later.toISOString()}`);
    expect(until.map((line) => line.seq)).toEqual(all.map((line) => line.seq));
  });

  it("shows nothing of another tenant's, whatever is asked", async () => {
    const { lines: mine } = await exportEvents(b);
    expect(mine.every((line) => line.event.tenantId === b.tenantId)).toBe(true);
    const { res: other } = await exportEvents(b, "", a.tenantId);
    expect(other.statusCode).toBe(403);
    const { lines: aEvents } = await exportEvents(a);
    const { res, lines: guessed } = await exportEvents(b, `?aggregate=${aEvents.at(-1)!.event.aggregateId}`);
    expect(res.statusCode).toBe(200);
    expect(guessed).toEqual([]);
    expect((await exportEvents(b, "?aggregate=nonsense")).res.statusCode).toBe(400);
  });
});

/** Reads a Server-Sent Events response until `done` says so or `timeoutMs` passes. */
async function readFeed(headers: Record<string, string>, done: (text: string) => boolean, timeoutMs = 10_000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const res = await fetch(`${baseUrl}/v1/webhooks/events`, { headers, signal: abort.signal });
  let text = "";
  try {
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (done(text)) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { status: res.status, contentType: res.headers.get("content-type"), headers: res.headers, text };
}

const messages = (text: string) =>
  [...text.matchAll(/id: (\d+)\nevent: ([^\n]+)\ndata: ([^\n]+)\n\n/g)].map(([, id, type, data]) => ({ seq: Number(id), type, event: JSON.parse(data!) as Envelope }));

describe("GET /v1/webhooks/events", () => {
  const auth = (tenant: typeof a) => ({ authorization: `Bearer ${tenant.key}`, "x-tenant-id": tenant.tenantId });

  it("streams the tenant's new events, with heartbeats, and resumes after Last-Event-ID", async () => {
    const reading = readFeed(auth(a), (text) => messages(text).length >= 1 && text.includes(": heartbeat"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await register(b, "b-live");
    const created = (await register(a, "a-live")).json().id as string;
    const live = await reading;
    expect(live.status).toBe(200);
    expect(live.contentType).toContain("text/event-stream");
    // The headers every answer carries survive the hijacked response.
    expect(live.headers.get("x-zen-contract-version")).toBe("1");
    expect(live.headers.get("x-request-id")).toBeTruthy();
    expect(live.headers.get("x-content-type-options")).toBe("nosniff");
    const [first] = messages(live.text);
    expect(first).toMatchObject({ type: "endpoint.registered", event: { tenantId: a.tenantId, aggregateId: created } });

    const second = (await register(a, "a-after")).json().id as string;
    const resumed = await readFeed({ ...auth(a), "last-event-id": String(first!.seq) }, (text) => messages(text).length >= 1);
    expect(messages(resumed.text)[0]).toMatchObject({ event: { tenantId: a.tenantId, aggregateId: second } });
  });

  it("refuses another tenant's feed and a malformed Last-Event-ID", async () => {
    const other = await readFeed({ ...auth(b), "x-tenant-id": a.tenantId }, () => true);
    expect(other.status).toBe(403);
    const bad = await readFeed({ ...auth(a), "last-event-id": "abc" }, () => true);
    expect(bad.status).toBe(400);
  });

  /**
   * Opens a feed and waits for its first line (or its refusal's body); `close()` leaves by
   * destroying the socket, as a client that goes away does (an aborted `fetch` kept it open).
   */
  function openFeed(headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; close(): void }> {
    return new Promise((resolve, reject) => {
      const req = request(`${baseUrl}/v1/webhooks/events`, { headers }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        const answer = () => resolve({ status: res.statusCode!, headers: res.headers, body, close: () => req.destroy() });
        if (res.statusCode === 200) res.once("data", answer);
        else {
          res.on("data", (chunk: string) => (body += chunk));
          res.once("end", answer);
        }
      });
      req.once("error", reject);
      req.end();
    });
  }
  const consumerCount = async () => (await h.streams.jsm.consumers.list(h.streams.topology.stream).next()).length;

  it("caps live feeds per tenant (429 naming the cap, others unaffected), and deletes each one's consumer when its client leaves", async () => {
    const before = await consumerCount();
    // 40 clients connect and leave, 20 at a time (the cap).
    for (let round = 0; round < 2; round++) {
      const feeds = await Promise.all(Array.from({ length: 20 }, () => openFeed(auth(a))));
      expect(feeds.map((f) => f.status)).toEqual(Array(20).fill(200));
      const refused = await openFeed(auth(a));
      expect(refused.status).toBe(429);
      const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("rate_limited");
      expect(body.error.message).toMatch(/20 per tenant/);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
      // Another tenant is not held back by A's feeds.
      const otherTenant = await openFeed(auth(b));
      expect(otherTenant.status).toBe(200);
      otherTenant.close();
      for (const feed of feeds) feed.close();
      await expect.poll(consumerCount, { timeout: 5_000, interval: 100 }).toBe(before);
    }
    // Below the cap again: a new feed is let in.
    const again = await openFeed(auth(a));
    expect(again.status).toBe(200);
    again.close();
  });

  it("holds a tenant to its own cap when the operator set one (maxLiveFeeds)", async () => {
    const set = await h.call({ method: "PUT", url: `/v1/tenants/${b.tenantId}/limits`, body: { maxLiveFeeds: 2 } });
    expect(set.statusCode).toBe(200);
    await h.deps.view.waitFor(Number(set.headers["x-zen-seq"]), 5_000);
    const feeds = [await openFeed(auth(b)), await openFeed(auth(b))];
    expect(feeds.map((f) => f.status)).toEqual([200, 200]);
    const refused = await openFeed(auth(b));
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: "rate_limited", details: { quota: "live_feeds", limit: 2 } });
    refused.close();
    for (const feed of feeds) feed.close();
  });

  it("holds nothing for a client that left before its feed opened", async () => {
    const before = await consumerCount();
    const { port } = new URL(baseUrl);
    // 30 clients (more than the cap of 20) send the request and hang up at once, while it is being authorised.
    await Promise.all(
      Array.from(
        { length: 30 },
        () =>
          new Promise<void>((resolve) => {
            const socket = connect(Number(port), "127.0.0.1", () => {
              const lines = Object.entries(auth(a)).map(([name, value]) => `${name}: ${value}`);
              socket.write(["GET /v1/webhooks/events HTTP/1.1", "host: 127.0.0.1", ...lines, "", ""].join("\r\n"), () => socket.resetAndDestroy());
            });
            socket.once("close", () => resolve());
          }),
      ),
    );
    // None of them holds a place under the tenant's cap, nor a consumer (earlier tests' may still be going).
    const feed = await openFeed(auth(a));
    expect(feed.status).toBe(200);
    feed.close();
    await expect.poll(consumerCount, { timeout: 5_000, interval: 100 }).toBeLessThanOrEqual(before);
  });
});
