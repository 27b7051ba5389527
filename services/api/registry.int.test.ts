import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write", "deliveries:read"]);
});
afterAll(() => h?.stop());

const call = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown, headers: Record<string, string> = {}) =>
  h.call({ method, url, token: t.key, tenantId: t.tenantId, body, headers });
const minSeq = (res: { headers: Record<string, unknown> }) => ({ "x-zen-min-seq": String(res.headers["x-zen-seq"]) });

describe("registry", () => {
  it("create → read → patch → delete, the secret shown only on create", async () => {
    const created = await call("POST", "/v1/webhooks/registry", {
      url: "https://example.com/hooks",
      eventTypes: ["invoice.*"],
      description: "billing",
      metadata: { team: "a" },
    });
    expect(created.statusCode).toBe(201);
    const endpoint = created.json();
    expect(endpoint).toMatchObject({ url: "https://example.com/hooks", eventTypes: ["invoice.*"], active: true, description: "billing" });
    expect(endpoint.id).toMatch(/^ep_/);
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(endpoint.createdAt).toEqual(expect.any(String));
    expect(Number(created.headers["x-zen-seq"])).toBeGreaterThan(0);

    const read = await call("GET", `/v1/webhooks/registry/${endpoint.id}`, undefined, minSeq(created));
    expect(read.statusCode).toBe(200);
    const { secret: _secret, ...withoutSecret } = endpoint;
    expect(read.json()).toEqual(withoutSecret);
    const list = await call("GET", "/v1/webhooks/registry", undefined, minSeq(created));
    expect(list.json()).toEqual({ data: [withoutSecret], nextCursor: null });
    const everything = JSON.stringify([read.json(), list.json()]) + h.logLines.join("");
    expect(everything).not.toContain(endpoint.secret);

    const patched = await call("PATCH", `/v1/webhooks/registry/${endpoint.id}`, { active: false, description: null });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ active: false, description: null, disabledReason: expect.any(String), createdAt: endpoint.createdAt });
    expect(patched.json()).not.toHaveProperty("secret");
    const afterPatch = await call("GET", `/v1/webhooks/registry/${endpoint.id}`, undefined, minSeq(patched));
    expect(afterPatch.json()).toMatchObject({ active: false, description: null });

    const deleted = await call("DELETE", `/v1/webhooks/registry/${endpoint.id}`);
    expect(deleted.statusCode).toBe(204);
    expect((await call("GET", `/v1/webhooks/registry/${endpoint.id}`, undefined, minSeq(deleted))).statusCode).toBe(404);
    expect((await call("DELETE", `/v1/webhooks/registry/${endpoint.id}`)).statusCode).toBe(404);
  });

  it("keeps a provided secret, refuses a malformed one, and PATCH cannot set it", async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const created = await call("POST", "/v1/webhooks/registry", { url: "https://example.com/a", eventTypes: ["*"], secret });
    expect(created.json().secret).toBe(secret);
    const bad = await call("POST", "/v1/webhooks/registry", { url: "https://example.com/a", eventTypes: ["*"], secret: "short" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0].path).toBe("body.secret");
    const patch = await call("PATCH", `/v1/webhooks/registry/${created.json().id}`, { secret });
    expect(patch.statusCode).toBe(400);
  });

  it("refuses a well-formed secret whose key is under 16 bytes: whsec_ and padding is an empty key anyone can sign with", async () => {
    for (const weak of ["whsec_====================", `whsec_${Buffer.alloc(15, 7).toString("base64")}`]) {
      const refused = await call("POST", "/v1/webhooks/registry", { url: "https://example.com/weak", eventTypes: ["*"], secret: weak });
      expect({ weak, status: refused.statusCode, code: refused.json().error.code }).toEqual({ weak, status: 422, code: "unprocessable" });
      expect(refused.json().error.message).toMatch(/at least 16 bytes/);
    }
    const sixteen = await call("POST", "/v1/webhooks/registry", {
      url: "https://example.com/ok",
      eventTypes: ["*"],
      secret: `whsec_${Buffer.alloc(16, 7).toString("base64")}`,
    });
    expect(sixteen.statusCode).toBe(201);
  });

  it("another tenant's endpoint is 404", async () => {
    const created = await call("POST", "/v1/webhooks/registry", { url: "https://example.com/b", eventTypes: ["*"] });
    const other = await createTenantWithKey(h, ["webhooks:read", "webhooks:write"], "Other");
    const headers = { ...minSeq(created) };
    const res = await h.call({ method: "GET", url: `/v1/webhooks/registry/${created.json().id}`, token: other.key, tenantId: other.tenantId, headers });
    expect(res.statusCode).toBe(404);
    const patch = await h.call({
      method: "PATCH",
      url: `/v1/webhooks/registry/${created.json().id}`,
      token: other.key,
      tenantId: other.tenantId,
      body: { active: false },
    });
    expect(patch.statusCode).toBe(404);
  });
});

describe("deliveryPolicy.timeoutMs", () => {
  it("accepts up to 30000 ms and refuses 30001 with 400, at registration and on PATCH", async () => {
    const at30s = await call("POST", "/v1/webhooks/registry", { url: "https://example.invalid/timeout", eventTypes: ["*"], deliveryPolicy: { timeoutMs: 30_000 } });
    expect(at30s.statusCode).toBe(201);
    expect(at30s.json().deliveryPolicy).toEqual({ timeoutMs: 30_000 });
    const over = await call("POST", "/v1/webhooks/registry", { url: "https://example.invalid/timeout", eventTypes: ["*"], deliveryPolicy: { timeoutMs: 30_001 } });
    expect(over.statusCode).toBe(400);
    expect(over.json().error).toMatchObject({ code: "invalid_request", details: [expect.objectContaining({ path: "body.deliveryPolicy.timeoutMs" })] });

    const id = at30s.json().id as string;
    const patchOver = await call("PATCH", `/v1/webhooks/registry/${id}`, { deliveryPolicy: { timeoutMs: 30_001 } });
    expect(patchOver.statusCode).toBe(400);
    expect(patchOver.json().error).toMatchObject({ code: "invalid_request", details: [expect.objectContaining({ path: "body.deliveryPolicy.timeoutMs" })] });
    const patchOk = await call("PATCH", `/v1/webhooks/registry/${id}`, { deliveryPolicy: { timeoutMs: 1_000 } });
    expect(patchOk.statusCode).toBe(200);
    expect(patchOk.json().deliveryPolicy).toEqual({ timeoutMs: 1_000 });
  });
});

describe("PATCH url with the SSRF guard on (allowPrivateTargets false)", () => {
  it.each([
    "http://127.0.0.1:8080/x",
    "http://2130706433/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://localhost:3000/x",
    "http://10.0.0.1/x",
    "http://169.254.169.254/latest",
  ])("422 for %s, and the endpoint keeps its url", async (url) => {
    const created = await call("POST", "/v1/webhooks/registry", { url: "https://example.invalid/public", eventTypes: ["*"] });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    const patched = await call("PATCH", `/v1/webhooks/registry/${id}`, { url });
    expect(patched.statusCode).toBe(422);
    expect(patched.json().error.code).toBe("unprocessable");
    const read = await call("GET", `/v1/webhooks/registry/${id}`, undefined, minSeq(created));
    expect(read.json().url).toBe("https://example.invalid/public");
  });
});

describe("read your writes", () => {
  it("X-Zen-Min-Seq waits for the read models", async () => {
    for (let i = 0; i < 5; i++) {
      const created = await call("POST", "/v1/webhooks/registry", { url: `https://example.com/ryw/${i}`, eventTypes: ["*"] });
      const read = await call("GET", `/v1/webhooks/registry/${created.json().id}`, undefined, minSeq(created));
      expect(read.statusCode).toBe(200);
    }
  });

  it("503 read_model_behind when the read models never get there, 400 on a malformed value", async () => {
    const behind = await call("GET", "/v1/webhooks/registry", undefined, { "x-zen-min-seq": "999999999" });
    expect(behind.statusCode).toBe(503);
    expect(behind.json().error.code).toBe("read_model_behind");
    const bad = await call("GET", "/v1/webhooks/registry", undefined, { "x-zen-min-seq": "abc" });
    expect(bad.statusCode).toBe(400);
  }, 15_000);
});

describe("deliveries", () => {
  it("lists (empty), filters, and answers 404 for an unknown delivery", async () => {
    const list = await call("GET", "/v1/webhooks/deliveries?status=dead&limit=10");
    expect(list.json()).toEqual({ data: [], nextCursor: null });
    expect((await call("GET", "/v1/webhooks/deliveries?status=bogus")).statusCode).toBe(400);
    expect((await call("GET", "/v1/webhooks/deliveries?cursor=garbage")).statusCode).toBe(400);
    // Forged cursors with times Postgres refuses are a 400 too, never a 500, on every paged list.
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const path of ["/v1/webhooks/deliveries", "/v1/webhooks/dlq"]) {
      for (const cursor of [forged(["1", "x"]), forged(["2020-02-30", "x"])]) {
        const res = await call("GET", `${path}?cursor=${cursor}`);
        expect({ path, cursor, status: res.statusCode, code: res.json().error?.code }).toEqual({ path, cursor, status: 400, code: "invalid_request" });
      }
    }
    expect((await call("GET", "/v1/webhooks/deliveries/dlv_01HZZZZZZZZZZZZZZZZZZZZZZZ")).statusCode).toBe(404);
    expect((await call("GET", "/v1/webhooks/dlq")).json()).toEqual({ data: [], nextCursor: null });
  });
});

describe("rotate-secret", () => {
  it("needs webhooks:write, and afterwards the endpoint reads with a later updatedAt and still no secret", async () => {
    const created = await call("POST", "/v1/webhooks/registry", { url: "https://example.com/rotate", eventTypes: ["*"] }, { "idempotency-key": `rot-${Date.now()}` });
    const { id, secret, updatedAt } = created.json() as { id: string; secret: string; updatedAt: string };
    const reader = await createTenantWithKey(h, ["webhooks:read"], "Reader");
    const refused = await h.call({
      method: "POST",
      url: `/v1/webhooks/registry/${id}/rotate-secret`,
      token: reader.key,
      tenantId: reader.tenantId,
      body: {},
      headers: { "idempotency-key": `rot-r-${Date.now()}` },
    });
    expect(refused.statusCode).toBe(403);

    await new Promise((r) => setTimeout(r, 5));
    const rotated = await call("POST", `/v1/webhooks/registry/${id}/rotate-secret`, { graceSeconds: 0 }, { "idempotency-key": `rot-w-${Date.now()}` });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json().secret).not.toBe(secret);
    const read = await call("GET", `/v1/webhooks/registry/${id}`, undefined, minSeq(rotated));
    expect(read.statusCode).toBe(200);
    expect(Date.parse(read.json().updatedAt)).toBeGreaterThan(Date.parse(updatedAt));
    expect(JSON.stringify(read.json())).not.toContain(rotated.json().secret);
    expect(read.json()).not.toHaveProperty("secret");
  });
});
