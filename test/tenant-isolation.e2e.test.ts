import { randomUUID } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { createTenant, dlqOf, QUICK_DEATH, type TestTenant } from "./support/tenants.js";

/**
 * Acceptance (issue 5, "Tenancy and trust"): tenant A's API key, holding every tenant scope, can
 * neither read, change, replay nor stream anything of tenant B's through any route, by naming B in
 * X-Tenant-Id (403) or by guessing B's ids under its own tenant (404, an empty list, or no effect).
 * The routes come from the running app's OpenAPI document: a route without a case here fails.
 */

/** What the test knows of B: every kind of id B has, each real. */
interface BIds {
  tenant: string;
  keyId: string;
  endpoint: string;
  deadEndpoint: string;
  source: string;
  message: string;
  deadMessage: string;
  delivery: string;
  deadDeliveries: string[];
  replay: string;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  text: string;
  json: any;
}

/** A tenant-scoped route: the calls that name B's ids, and what A must get for each under its own tenant. */
interface TenantCase {
  calls: (b: BIds) => Call[];
  /** Under A's own X-Tenant-Id. */
  own: (answer: Answer, call: Call, b: BIds) => void | Promise<void>;
}

const notFound = (answer: Answer) => {
  expect(answer.status).toBe(404);
  expect(answer.json.error.code).toBe("not_found");
};
const emptyList = (answer: Answer) => {
  expect(answer.status).toBe(200);
  expect(answer.json.data).toEqual([]);
};
/** A list of A's own: none of its entries names anything of B's. */
const nothingOfB = (answer: Answer, _call: Call, b: BIds) => {
  expect(answer.status).toBe(200);
  for (const id of Object.values(b).flat()) expect(answer.text).not.toContain(id);
};
/** A create under A that tries to name B as its tenant: refused, as every unknown body field is. */
const refusedField = (answer: Answer) => {
  expect(answer.status).toBe(400);
  expect(answer.json.error.code).toBe("invalid_request");
};

describe("tenant isolation: A's key reaches nothing of B's", () => {
  let receiver: Receiver;
  let zen: TestPlatform;
  let a: TestTenant;
  let b: TestTenant;
  let bIds: BIds;
  let aSource: { id: string; secret: string };
  let bSourceSecret: string;
  /** The highest stream sequence any setup command returned: reads wait for it. */
  let seq = 0;
  let before: unknown;
  /** Replays A started with B's ids: each must have replayed nothing. */
  const aReplays: string[] = [];

  const track = (answer: { headers: Headers }) => {
    seq = Math.max(seq, Number(answer.headers.get("x-zen-seq") ?? 0));
  };

  /** One call as `token` acting on `tenantId`, read to the end (an event feed: for a moment). */
  async function send(token: string, tenantId: string | undefined, call: Call): Promise<Answer> {
    const abort = new AbortController();
    const response = await fetch(`${zen.url}${call.path}`, {
      method: call.method,
      signal: abort.signal,
      headers: {
        authorization: `Bearer ${token}`,
        ...(tenantId ? { "x-tenant-id": tenantId } : {}),
        ...(call.body === undefined ? {} : { "content-type": "application/json" }),
        ...(call.method === "GET" ? { "x-zen-min-seq": String(seq) } : { "idempotency-key": randomUUID() }),
        ...call.headers,
      },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    });
    let text = "";
    if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
      const reader = response.body!.getReader();
      const until = Date.now() + 1_500;
      const decoder = new TextDecoder();
      while (Date.now() < until) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), until - Date.now()))]);
        if (chunk === null || chunk.done) break;
        text += decoder.decode(chunk.value);
      }
      abort.abort();
    } else {
      text = await response.text();
    }
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  }

  const asA = (tenantId: string, call: Call) => send(a.key, tenantId, call);
  /**
   * Events of A's only: none of B's tenant or aggregates. (A's own events may quote B's ids that A
   * itself sent, e.g. the selection of A's replay; that is A's data, not B's.)
   */
  const onlyAsEvents = (events: Array<{ tenantId: string; aggregateId: string }>, ids: BIds) => {
    const ofB = new Set(Object.values(ids).flat());
    for (const event of events) {
      expect(event.tenantId).toBe(a.id);
      expect(ofB.has(event.aggregateId)).toBe(false);
    }
  };
  const ndjsonLines = (text: string) =>
    text
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line));

  /** Every tenant-scoped route of the OpenAPI document, by `METHOD /path` as the document spells it. */
  const TENANT_CASES: Record<string, TenantCase> = {
    "POST /v1/webhooks/ingest": {
      calls: (ids) => [{ method: "POST", path: "/v1/webhooks/ingest", body: { eventType: "x.y", payload: {}, tenantId: ids.tenant } }],
      own: refusedField,
    },
    "GET /v1/webhooks/registry": {
      calls: () => [{ method: "GET", path: "/v1/webhooks/registry?limit=500" }],
      own: nothingOfB,
    },
    "POST /v1/webhooks/registry": {
      calls: (ids) => [{ method: "POST", path: "/v1/webhooks/registry", body: { url: receiver.url("/a/x"), eventTypes: ["*"], tenantId: ids.tenant } }],
      own: refusedField,
    },
    "GET /v1/webhooks/registry/{id}": {
      calls: (ids) => [ids.endpoint, ids.deadEndpoint].map((id) => ({ method: "GET", path: `/v1/webhooks/registry/${id}` })),
      own: notFound,
    },
    "PATCH /v1/webhooks/registry/{id}": {
      calls: (ids) =>
        [ids.endpoint, ids.deadEndpoint].map((id) => ({
          method: "PATCH",
          path: `/v1/webhooks/registry/${id}`,
          body: { url: receiver.url("/a/stolen"), eventTypes: ["*"], active: true },
        })),
      own: notFound,
    },
    "DELETE /v1/webhooks/registry/{id}": {
      calls: (ids) => [ids.endpoint, ids.deadEndpoint].map((id) => ({ method: "DELETE", path: `/v1/webhooks/registry/${id}` })),
      own: notFound,
    },
    "POST /v1/webhooks/registry/{id}/rotate-secret": {
      calls: (ids) => [ids.endpoint, ids.deadEndpoint].map((id) => ({ method: "POST", path: `/v1/webhooks/registry/${id}/rotate-secret`, body: { graceSeconds: 0 } })),
      own: notFound,
    },
    "POST /v1/webhooks/test": {
      calls: (ids) =>
        [ids.endpoint, ids.deadEndpoint].map((id) => ({ method: "POST", path: "/v1/webhooks/test", body: { endpointId: id, eventType: "x.y", payload: {} } })),
      own: notFound,
    },
    "GET /v1/webhooks/sources": {
      calls: () => [{ method: "GET", path: "/v1/webhooks/sources?limit=500" }],
      own: nothingOfB,
    },
    "POST /v1/webhooks/sources": {
      calls: (ids) => [{ method: "POST", path: "/v1/webhooks/sources", body: { name: "smuggled", scheme: "github", tenantId: ids.tenant } }],
      own: refusedField,
    },
    "GET /v1/webhooks/sources/{id}": {
      calls: (ids) => [{ method: "GET", path: `/v1/webhooks/sources/${ids.source}` }],
      own: notFound,
    },
    "PATCH /v1/webhooks/sources/{id}": {
      calls: (ids) => [{ method: "PATCH", path: `/v1/webhooks/sources/${ids.source}`, body: { name: "stolen", secret: "a-secret-of-As-choosing" } }],
      own: notFound,
    },
    "DELETE /v1/webhooks/sources/{id}": {
      calls: (ids) => [{ method: "DELETE", path: `/v1/webhooks/sources/${ids.source}` }],
      own: notFound,
    },
    "GET /v1/webhooks/deliveries": {
      calls: (ids) => [
        ...[ids.endpoint, ids.deadEndpoint].map((id) => ({ method: "GET", path: `/v1/webhooks/deliveries?endpointId=${id}` })),
        ...[ids.message, ids.deadMessage].map((id) => ({ method: "GET", path: `/v1/webhooks/deliveries?messageId=${id}` })),
        { method: "GET", path: `/v1/webhooks/deliveries?status=dead&endpointId=${ids.deadEndpoint}` },
      ],
      own: emptyList,
    },
    "GET /v1/webhooks/deliveries/{id}": {
      calls: (ids) => [ids.delivery, ...ids.deadDeliveries].map((id) => ({ method: "GET", path: `/v1/webhooks/deliveries/${id}` })),
      own: notFound,
    },
    "GET /v1/webhooks/dlq": {
      calls: (ids) => [
        { method: "GET", path: `/v1/webhooks/dlq?endpointId=${ids.deadEndpoint}` },
        { method: "GET", path: "/v1/webhooks/dlq?limit=500" },
      ],
      own: emptyList,
    },
    "POST /v1/webhooks/dlq/replay": {
      calls: (ids) => [
        { method: "POST", path: "/v1/webhooks/dlq/replay", body: { deliveryIds: [...ids.deadDeliveries, ids.delivery] } },
        { method: "POST", path: "/v1/webhooks/dlq/replay", body: { filter: { endpointId: ids.deadEndpoint } } },
      ],
      own: (answer) => {
        // Accepted (answering otherwise would tell A which ids exist), and every id skipped: below.
        expect(answer.status).toBe(202);
        expect(answer.json.replayId).toMatch(/^rpl_/);
        aReplays.push(answer.json.replayId);
      },
    },
    "GET /v1/webhooks/dlq/replay/{replayId}": {
      calls: (ids) => [{ method: "GET", path: `/v1/webhooks/dlq/replay/${ids.replay}` }],
      own: notFound,
    },
    "GET /v1/audit": {
      calls: (ids) => [
        ...[ids.endpoint, ids.deadEndpoint, ids.source, ids.replay, ids.deadDeliveries[0]!, ids.message, ids.tenant, ids.keyId].map((id) => ({
          method: "GET",
          path: `/v1/audit?aggregateId=${id}`,
        })),
        { method: "GET", path: `/v1/audit?actorId=${ids.keyId}` },
      ],
      own: emptyList,
    },
    "GET /v1/streams/events": {
      calls: (ids) => [
        ...[ids.endpoint, ids.deadEndpoint, ids.source, ids.replay, ids.deadDeliveries[0]!, ids.message, ids.tenant].map((id) => ({
          method: "GET",
          path: `/v1/streams/events?aggregate=${id}`,
        })),
        { method: "GET", path: "/v1/streams/events?limit=1000" },
      ],
      own: (answer, _call, ids) => {
        expect(answer.status).toBe(200);
        onlyAsEvents(
          ndjsonLines(answer.text).map((line) => line.event),
          ids,
        );
      },
    },
    "GET /v1/webhooks/events": {
      calls: () => [{ method: "GET", path: "/v1/webhooks/events", headers: { "last-event-id": "0" } }],
      own: (answer, _call, ids) => {
        // A's own feed, from the log's start: A's events, never one of B's.
        expect(answer.status).toBe(200);
        expect(answer.text).toContain(": connected");
        const events = answer.text
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((line) => JSON.parse(line.slice(6)));
        expect(events.length).toBeGreaterThan(0);
        onlyAsEvents(events, ids);
      },
    },
  };

  /** Operator routes: a tenant key gets 403 whichever tenant it names. */
  const OPERATOR_CASES: Record<string, (ids: BIds) => Call[]> = {
    "POST /v1/tenants": () => [{ method: "POST", path: "/v1/tenants", body: { name: "Mallory" } }],
    "POST /v1/tenants/{tenantId}/api-keys": (ids) =>
      [ids.tenant, a.id].map((t) => ({ method: "POST", path: `/v1/tenants/${t}/api-keys`, body: { name: "stolen", scopes: ["admin"] } })),
    "GET /v1/tenants/{tenantId}/api-keys": (ids) => [ids.tenant, a.id].map((t) => ({ method: "GET", path: `/v1/tenants/${t}/api-keys` })),
    "DELETE /v1/tenants/{tenantId}/api-keys/{keyId}": (ids) => [{ method: "DELETE", path: `/v1/tenants/${ids.tenant}/api-keys/${ids.keyId}` }],
    "PUT /v1/tenants/{tenantId}/limits": (ids) =>
      [ids.tenant, a.id].map((t) => ({ method: "PUT", path: `/v1/tenants/${t}/limits`, body: { outbound: { perSecond: 1 } } })),
    "GET /v1/parked": (ids) => [
      { method: "GET", path: "/v1/parked" },
      { method: "GET", path: `/v1/parked?tenantId=${ids.tenant}` },
    ],
    "GET /v1/parked/{parkedId}": () => [{ method: "GET", path: "/v1/parked/pkd_router-1" }],
    "POST /v1/parked/{parkedId}/replay": () => [{ method: "POST", path: "/v1/parked/pkd_router-1/replay" }],
  };

  /** Routes that take no credential: the inbound intake (a signature) has its own case below. */
  const UNAUTHENTICATED = ["POST /v1/inbound/{tenantId}/{sourceId}", "GET /health", "GET /ready", "GET /readyz"];

  /** B's state as B reads it, everything A's calls could have touched. */
  async function snapshotOfB() {
    const read = async (path: string) => {
      const answer = await send(b.key, b.id, { method: "GET", path });
      expect(answer.status, path).toBe(200);
      return answer.json ?? ndjsonLines(answer.text);
    };
    return {
      registry: await read("/v1/webhooks/registry?limit=500"),
      endpoint: await read(`/v1/webhooks/registry/${bIds.endpoint}`),
      deadEndpoint: await read(`/v1/webhooks/registry/${bIds.deadEndpoint}`),
      sources: await read("/v1/webhooks/sources?limit=500"),
      source: await read(`/v1/webhooks/sources/${bIds.source}`),
      deliveries: await read("/v1/webhooks/deliveries?limit=500"),
      deadDetails: await Promise.all(bIds.deadDeliveries.map((id) => read(`/v1/webhooks/deliveries/${id}`))),
      dlq: await dlqOf(b.client, bIds.deadEndpoint),
      replay: await read(`/v1/webhooks/dlq/replay/${bIds.replay}`),
      audit: await read("/v1/audit?limit=500"),
      events: await read("/v1/streams/events?limit=1000"),
      apiKeys: (await send(ADMIN_TOKEN, undefined, { method: "GET", path: `/v1/tenants/${b.id}/api-keys` })).json.data.map((k: { id: string; revokedAt?: string }) => [
        k.id,
        k.revokedAt ?? null,
      ]),
      received: receiver.received.filter((r) => r.path.startsWith("/b/")).length,
    };
  }

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.behave("/b/dead", { status: 500 });
    // The circuit breaker has its own tests; here it would only add events to B's log later.
    zen = await startTestPlatform({ ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000" });
    a = await createTenant(zen.url, "Acme");
    b = await createTenant(zen.url, "Globex");

    const register = async (tenant: TestTenant, path: string, eventTypes: string[], extra: object = {}) => {
      const created = await tenant.client("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes, ...extra });
      expect(created.status).toBe(201);
      track(created);
      receiver.setSecret(path, created.body.secret);
      return created.body.id as string;
    };
    const source = async (tenant: TestTenant) => {
      const created = await tenant.client("POST", "/v1/webhooks/sources", { name: "GitHub", scheme: "github" });
      expect(created.status).toBe(201);
      track(created);
      return { id: created.body.id as string, secret: created.body.secret as string };
    };
    const ingest = async (tenant: TestTenant, eventType: string) => {
      const accepted = await tenant.client("POST", "/v1/webhooks/ingest", { eventType, payload: { from: tenant.id } });
      expect(accepted.status).toBe(202);
      track(accepted);
      return accepted.body.messageId as string;
    };

    await register(a, "/a/ok", ["*"]);
    aSource = await source(a);
    await ingest(a, "a.thing");
    const endpoint = await register(b, "/b/ok", ["b.ok"]);
    const deadEndpoint = await register(b, "/b/dead", ["b.dead"], { retryPolicy: QUICK_DEATH });
    const bSource = await source(b);
    bSourceSecret = bSource.secret;
    const message = await ingest(b, "b.ok");
    const deadMessage = await ingest(b, "b.dead");
    await ingest(b, "b.dead");
    await eventually(async () => (await dlqOf(b.client, deadEndpoint)).length === 2, 60_000, "B's two deliveries in its DLQ");
    const deadDeliveries = await dlqOf(b.client, deadEndpoint);
    await eventually(
      async () => (await b.client("GET", `/v1/webhooks/deliveries?messageId=${message}`)).body.data?.[0]?.status === "succeeded",
      30_000,
      "B's good delivery",
    );
    const delivery = (await b.client("GET", `/v1/webhooks/deliveries?messageId=${message}`)).body.data[0].id as string;

    // A real replay of B's: one dead delivery, attempted again, dead again.
    const replayed = await b.client("POST", "/v1/webhooks/dlq/replay", { deliveryIds: [deadDeliveries[0]] }, { "idempotency-key": "b-replay" });
    expect(replayed.status).toBe(202);
    track(replayed);
    const replay = replayed.body.replayId as string;
    await eventually(async () => (await b.client("GET", `/v1/webhooks/dlq/replay/${replay}`)).body.failed === 1, 60_000, "B's replayed delivery to die again");
    await eventually(async () => (await dlqOf(b.client, deadEndpoint)).length === 2, 30_000, "B's DLQ to hold both again");
    expect(receiver.on("/b/dead").length).toBe(2 * QUICK_DEATH.maxAttempts + QUICK_DEATH.maxAttempts);

    bIds = { tenant: b.id, keyId: b.keyId, endpoint, deadEndpoint, source: bSource.id, message, deadMessage, delivery, deadDeliveries, replay };
    // B's log is still: wait until two reads a second apart agree.
    let last = "";
    await eventually(
      async () => {
        const now = JSON.stringify(await snapshotOfB());
        const still = now === last;
        last = now;
        if (!still) await new Promise((r) => setTimeout(r, 1_000));
        return still;
      },
      30_000,
      "B's state to settle",
    );
    before = JSON.parse(last);
  }, 180_000);

  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it("has a case for every route of the OpenAPI document", async () => {
    const doc = (await (await fetch(`${zen.url}/docs/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((m) => ["get", "post", "put", "patch", "delete"].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    const covered = [...Object.keys(TENANT_CASES), ...Object.keys(OPERATOR_CASES), ...UNAUTHENTICATED];
    expect(routes.sort()).toEqual([...new Set(covered)].sort());
    // And every /v1/webhooks, /v1/audit, /v1/streams route is a tenant-scoped one.
    for (const route of routes.filter((r) => /^\w+ \/v1\/(webhooks|audit|streams)/.test(r))) expect(Object.keys(TENANT_CASES)).toContain(route);
  });

  it("refuses A's key naming B in X-Tenant-Id on every tenant-scoped route with 403", async () => {
    for (const [route, testCase] of Object.entries(TENANT_CASES)) {
      for (const call of testCase.calls(bIds)) {
        const answer = await asA(b.id, call);
        expect(answer.status, `${route}: ${call.method} ${call.path}`).toBe(403);
        expect(answer.json.error.code).toBe("forbidden");
      }
    }
  });

  it("answers A's key under its own tenant with B's ids as not found, empty, or without effect", async () => {
    for (const [route, testCase] of Object.entries(TENANT_CASES)) {
      for (const call of testCase.calls(bIds)) {
        const answer = await asA(a.id, call);
        try {
          await testCase.own(answer, call, bIds);
        } catch (error) {
          throw new Error(`${route}: ${call.method} ${call.path} answered ${answer.status} ${answer.text.slice(0, 300)}: ${String(error)}`);
        }
      }
    }
    // A's replays named B's dead deliveries, directly or by B's endpoint: nothing was replayed.
    expect(aReplays).toHaveLength(2);
    for (const id of aReplays) {
      await eventually(async () => (await a.client("GET", `/v1/webhooks/dlq/replay/${id}`)).body.status === "completed", 30_000, "A's replay to complete");
      const progress = (await a.client("GET", `/v1/webhooks/dlq/replay/${id}`)).body;
      expect(progress).toMatchObject({ replayed: 0, succeeded: 0, failed: 0 });
    }
    expect((await a.client("GET", `/v1/webhooks/dlq/replay/${aReplays[0]}`)).body).toMatchObject({ requested: 3, skipped: 3 });
  });

  it("refuses A's key on every operator route, naming either tenant, with 403", async () => {
    for (const [route, calls] of Object.entries(OPERATOR_CASES)) {
      for (const call of calls(bIds)) {
        for (const tenantId of [a.id, b.id, undefined]) {
          const answer = await send(a.key, tenantId, call);
          expect(answer.status, `${route} naming ${tenantId}: ${call.method} ${call.path}`).toBe(403);
          expect(answer.json.error.code).toBe("forbidden");
        }
      }
    }
  });

  it("does not route an inbound request across tenants: B's path with A's source, A's path with B's source", async () => {
    const inbound = async (tenantId: string, sourceId: string, secret: string) => {
      const body = JSON.stringify({ action: "opened" });
      const response = await fetch(`${zen.url}/v1/inbound/${tenantId}/${sourceId}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-github-event": "push",
          "x-github-delivery": randomUUID(),
          "x-hub-signature-256": await githubSign(secret, body),
        },
        body,
      });
      return { status: response.status, json: (await response.json()) as { error: { code: string } } };
    };
    for (const answer of [await inbound(b.id, aSource.id, aSource.secret), await inbound(a.id, bIds.source, bSourceSecret)]) {
      expect(answer.status).toBe(404);
      expect(answer.json.error.code).toBe("not_found");
    }
    // The check is not vacuous: each source takes its own tenant's signed request.
    expect((await inbound(a.id, aSource.id, aSource.secret)).status).toBe(202);
  });

  it("leaves B's data as it was: endpoints, sources, deliveries, DLQ, replay, audit, events, keys", async () => {
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await snapshotOfB()).toEqual(before);
    // B's endpoint still signs with the secret B holds and still points at B's receiver.
    const accepted = await b.client("POST", "/v1/webhooks/ingest", { eventType: "b.ok", payload: { after: true } });
    expect(accepted.status).toBe(202);
    await eventually(() => receiver.on("/b/ok").some((r) => r.webhookId === accepted.body.messageId), 30_000, "B's event after the attacks");
    expect(receiver.on("/b/ok").every((r) => r.verified)).toBe(true);
    expect(receiver.received.filter((r) => r.path.startsWith("/a/stolen"))).toEqual([]);
  });
});
