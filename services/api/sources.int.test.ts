import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit, waitForSeq } from "../../projections/index.js";
import { readAllEvents } from "../../test/support/nats.js";
import { createTenantWithKey, startApiHarness, type ApiHarness } from "./testing.js";

let h: ApiHarness;
let t: Awaited<ReturnType<typeof createTenantWithKey>>;
let key = 0;

beforeAll(async () => {
  h = await startApiHarness();
  t = await createTenantWithKey(h, ["webhooks:read", "webhooks:write"]);
});
afterAll(() => h?.stop());

type Method = "GET" | "POST" | "PATCH" | "DELETE";
const as =
  (who: { key: string; tenantId: string }) =>
  (method: Method, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    h.call({ method, url, token: who.key, tenantId: who.tenantId, body, headers: { ...(method === "GET" ? {} : { "idempotency-key": `k-${++key}` }), ...headers } });
const call = (...args: Parameters<ReturnType<typeof as>>) => as(t)(...args);
const minSeq = (res: { headers: Record<string, unknown> }) => ({ "x-zen-min-seq": String(res.headers["x-zen-seq"]) });
const eventsOf = async (aggregateId: string) =>
  (await readAllEvents(h.streams, h.streams.topology)).filter((e) => e.envelope.aggregateId === aggregateId).map((e) => e.envelope);

describe("inbound sources: CRUD", () => {
  it("create → read → list → patch → delete; the secret is shown on create only, and stored sealed", async () => {
    const created = await call("POST", "/v1/webhooks/sources", { name: "GitHub org", scheme: "github", eventTypeFrom: { header: "X-Kind" } });
    expect(created.statusCode).toBe(201);
    const source = created.json();
    expect(source).toMatchObject({ name: "GitHub org", scheme: "github", hmac: null, eventTypeFrom: { header: "X-Kind" } });
    expect(source.id).toMatch(/^src_/);
    expect(source.inboundPath).toBe(`/v1/inbound/${t.tenantId}/${source.id}`);
    expect(source.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);

    const { secret, ...withoutSecret } = source;
    const read = await call("GET", `/v1/webhooks/sources/${source.id}`, undefined, minSeq(created));
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(withoutSecret);
    const list = await call("GET", "/v1/webhooks/sources", undefined, minSeq(created));
    expect(list.json()).toEqual({ data: [withoutSecret], nextCursor: null });

    const rolled = "a-new-provider-secret-0123456789";
    const patched = await call("PATCH", `/v1/webhooks/sources/${source.id}`, { name: "GitHub", secret: rolled, eventTypeFrom: null });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ name: "GitHub", eventTypeFrom: null, createdAt: source.createdAt });
    expect(patched.json()).not.toHaveProperty("secret");
    const afterPatch = await call("GET", `/v1/webhooks/sources/${source.id}`, undefined, minSeq(patched));
    expect(afterPatch.json()).toMatchObject({ name: "GitHub", eventTypeFrom: null });

    const events = await eventsOf(source.id);
    expect(events.map((e) => e.type)).toEqual(["source.created", "source.updated"]);
    expect(events[0]!.data).toMatchObject({ secret: expect.stringMatching(/^enc:v1:/) });
    expect(events[1]!.data).toMatchObject({ secret: expect.stringMatching(/^enc:v1:/) });
    const everything = JSON.stringify([events, read.json(), list.json(), patched.json(), afterPatch.json()]) + h.logLines.join("");
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(rolled);

    const deleted = await call("DELETE", `/v1/webhooks/sources/${source.id}`);
    expect(deleted.statusCode).toBe(204);
    expect((await call("GET", `/v1/webhooks/sources/${source.id}`, undefined, minSeq(deleted))).statusCode).toBe(404);
    expect((await call("GET", "/v1/webhooks/sources", undefined, minSeq(deleted))).json().data).toEqual([]);
    expect((await call("DELETE", `/v1/webhooks/sources/${source.id}`)).statusCode).toBe(404);
    expect((await call("PATCH", `/v1/webhooks/sources/${source.id}`, { name: "x" })).statusCode).toBe(404);
  });

  it("keeps a provider's secret and requires it for provider schemes", async () => {
    const stripe = await call("POST", "/v1/webhooks/sources", { name: "Stripe", scheme: "stripe", secret: "whsec_stripe_given_0123456789" });
    expect(stripe.statusCode).toBe(201);
    expect(stripe.json().secret).toBe("whsec_stripe_given_0123456789");
    for (const scheme of ["stripe", "slack", "shopify"]) {
      const missing = await call("POST", "/v1/webhooks/sources", { name: "x", scheme });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().error.details).toContainEqual({ path: "body.secret", message: expect.any(String) });
    }
  });

  it("validates the generic scheme's settings", async () => {
    const hmac = { algorithm: "sha512", header: "X-Sig", encoding: "base64", prefix: "sha512=", timestampHeader: "X-Ts", signedContent: "{timestamp}.{body}" };
    const ok = await call("POST", "/v1/webhooks/sources", { name: "Acme", scheme: "hmac", hmac });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().hmac).toEqual(hmac);
    expect((await call("POST", "/v1/webhooks/sources", { name: "Acme", scheme: "hmac" })).statusCode).toBe(400);
    expect((await call("POST", "/v1/webhooks/sources", { name: "Acme", scheme: "github", hmac })).statusCode).toBe(400);
    const unsigned = await call("POST", "/v1/webhooks/sources", { name: "Acme", scheme: "hmac", hmac: { ...hmac, signedContent: "{timestamp}" } });
    expect(unsigned.statusCode).toBe(422);
    expect(unsigned.json().error.code).toBe("unprocessable");
    // An id or timestamp header the signature does not cover would let a captured request be replayed as new.
    for (const [settings, placeholder] of [
      [{ ...hmac, idHeader: "X-Id" }, "{id}"],
      [{ ...hmac, signedContent: "{body}" }, "{timestamp}"],
    ] as const) {
      const refused = await call("POST", "/v1/webhooks/sources", { name: "Acme", scheme: "hmac", hmac: settings });
      expect({ status: refused.statusCode, code: refused.json().error.code }).toEqual({ status: 422, code: "unprocessable" });
      expect(refused.json().error.message).toContain(placeholder);
    }
    const unsignedId = await call("PATCH", `/v1/webhooks/sources/${ok.json().id}`, { hmac: { ...hmac, idHeader: "X-Id" } });
    expect(unsignedId.statusCode).toBe(422);
    const patched = await call("PATCH", `/v1/webhooks/sources/${ok.json().id}`, { hmac: { ...hmac, encoding: "hex" } });
    expect(patched.json().hmac.encoding).toBe("hex");
    expect((await call("POST", "/v1/webhooks/sources", { name: "x", scheme: "github", extra: 1 })).statusCode).toBe(400);
  });

  it("another tenant's source is not found for its key, and its tenant is forbidden", async () => {
    const created = await call("POST", "/v1/webhooks/sources", { name: "Shopify", scheme: "shopify", secret: "shpss_0123456789abcdef" });
    const id = created.json().id as string;
    const other = await createTenantWithKey(h, ["webhooks:read", "webhooks:write"], "Other");
    const otherCall = as(other);
    expect((await otherCall("GET", `/v1/webhooks/sources/${id}`, undefined, minSeq(created))).statusCode).toBe(404);
    expect((await otherCall("GET", "/v1/webhooks/sources", undefined, minSeq(created))).json().data).toEqual([]);
    expect((await otherCall("PATCH", `/v1/webhooks/sources/${id}`, { name: "mine" })).statusCode).toBe(404);
    expect((await otherCall("DELETE", `/v1/webhooks/sources/${id}`)).statusCode).toBe(404);
    const crossTenant = as({ key: other.key, tenantId: t.tenantId });
    expect((await crossTenant("GET", `/v1/webhooks/sources/${id}`)).statusCode).toBe(403);
    expect((await crossTenant("DELETE", `/v1/webhooks/sources/${id}`)).statusCode).toBe(403);
    expect((await call("GET", `/v1/webhooks/sources/${id}`)).json().name).toBe("Shopify");
  });

  it("needs webhooks:write to change and webhooks:read to read", async () => {
    const reader = await createTenantWithKey(h, ["webhooks:read"], "Reader");
    const res = await as(reader)("POST", "/v1/webhooks/sources", { name: "x", scheme: "github" });
    expect(res.statusCode).toBe(403);
    const ingestOnly = await createTenantWithKey(h, ["ingest"], "Ingest");
    expect((await as(ingestOnly)("GET", "/v1/webhooks/sources")).statusCode).toBe(403);
  });

  it("audits source changes: that the secret was set or changed, never the secret", async () => {
    const created = await call("POST", "/v1/webhooks/sources", { name: "Audited", scheme: "github" });
    const rolled = "another-provider-secret-0123456789";
    const patched = await call("PATCH", `/v1/webhooks/sources/${created.json().id}`, { secret: rolled });
    expect(patched.statusCode).toBe(200);
    expect(await waitForSeq(h.db, Number(patched.headers["x-zen-seq"]), 5_000)).toBe(true);
    const audit = await listAudit(h.db, t.tenantId);
    const rows = audit.data.filter((r) => r.aggregateId === created.json().id);
    expect(rows.find((r) => r.action === "source.created")).toMatchObject({
      aggregateType: "source",
      changes: { name: "Audited", scheme: "github", secret: "[changed]" },
    });
    expect(rows.find((r) => r.action === "source.updated")?.changes).toEqual({ secret: "[changed]" });
    const text = JSON.stringify(rows);
    for (const leaked of [created.json().secret, rolled, "enc:v1:"]) expect(text).not.toContain(leaked);
  });

  it("refuses a secret whose key is under 16 bytes, on create and on update, for every scheme, and changes nothing", async () => {
    // 16 base64 characters are a 12-byte Standard Webhooks key; "........" (below) is 8 bytes of text.
    for (const [scheme, weak] of [
      ["standard-webhooks", `whsec_${Buffer.alloc(12, 7).toString("base64")}`],
      ["stripe", "whsec_short"],
      ["slack", "0123456789abcde"],
      ["shopify", "shpss_short"],
    ] as const) {
      const refused = await call("POST", "/v1/webhooks/sources", { name: "weak", scheme, secret: weak });
      expect({ scheme, status: refused.statusCode, code: refused.json().error.code }).toEqual({ scheme, status: 422, code: "unprocessable" });
    }
    for (const scheme of ["standard-webhooks", "github", "hmac"] as const) {
      const settings = scheme === "hmac" ? { hmac: { algorithm: "sha256", header: "X-Sig", encoding: "hex" } } : {};
      const created = await call("POST", "/v1/webhooks/sources", { name: `strong ${scheme}`, scheme, ...settings });
      expect(created.statusCode).toBe(201);
      const weakened = await call("PATCH", `/v1/webhooks/sources/${created.json().id}`, { secret: "........" });
      expect({ scheme, status: weakened.statusCode, code: weakened.json().error?.code }).toEqual({ scheme, status: 422, code: "unprocessable" });
      expect(weakened.json().error.message).toMatch(/at least 16 bytes/);
      // Nothing changed: the source still verifies with the secret it was created with.
      const events = (await readAllEvents(h.streams, h.streams.topology)).filter((e) => e.envelope.aggregateId === created.json().id);
      expect(events.map((e) => e.envelope.type)).toEqual(["source.created"]);
    }
  });

  it("documents the source and inbound routes in the OpenAPI document", async () => {
    const doc = (await h.call({ method: "GET", url: "/docs/openapi.json", token: null })).json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/webhooks/sources", "/v1/webhooks/sources/{id}", "/v1/inbound/{tenantId}/{sourceId}"]));
    expect(JSON.stringify(doc)).toContain("The signing secret: shown only now");
    expect(doc.paths["/v1/inbound/{tenantId}/{sourceId}"].post.responses).toHaveProperty("202");
  });
});
