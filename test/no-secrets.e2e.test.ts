import { randomBytes, randomUUID } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopology } from "../streams/topology.js";
import { deleteTestStream, rawMessagesOf, TEST_NATS_URL, uniquePrefix } from "./support/nats.js";
import { ADMIN_TOKEN, apiClient } from "./support/platform.js";
import { allRows, createTestDatabase, type TestDatabase } from "./support/postgres.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";
import { createTenant, dlqOf, QUICK_DEATH } from "./support/tenants.js";

/**
 * Acceptance (issue 5, "Tenancy and trust"): after a realistic run, a grep over everything the
 * platform wrote (its process's stdout and stderr at LOG_LEVEL=debug, every message of its event
 * stream and KV buckets, every row of every table) finds no secret, API key or token in plain text.
 */

/** Every place the platform wrote something, as text. */
interface Capture {
  where: string;
  text: string;
}

/** Which of the named secrets occur in which captures. */
function findSecrets(captures: Capture[], secrets: Map<string, string>): string[] {
  const found: string[] = [];
  for (const { where, text } of captures) {
    for (const [name, value] of secrets) if (text.includes(value)) found.push(`${name} in ${where}`);
  }
  return found;
}

describe("no secret in plain text in logs, events, rows or KV after a full run", () => {
  let receiver: Receiver;
  let database: TestDatabase;
  let platform: PlatformProcess;
  const prefix = uniquePrefix();
  /** Every secret the test knows, by name. */
  const secrets = new Map<string, string>();
  /** Responses that carried a secret to its owner, as the client holds them. */
  const shown: Capture[] = [];
  let captures: Capture[] = [];

  const keep = (name: string, value: string) => {
    expect(value.length).toBeGreaterThanOrEqual(16);
    secrets.set(name, value);
    // The key material of a whsec_ secret is secret without its prefix too.
    if (value.startsWith("whsec_")) secrets.set(`${name} (key)`, value.slice("whsec_".length));
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    database = await createTestDatabase();
    const port = await freePort();
    const masterKey = randomBytes(32).toString("hex");
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwt = await new SignJWT({ scope: "admin" })
      .setProtectedHeader({ alg: "ES256" })
      .setSubject("ops@example.com")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(privateKey);
    keep("master key", masterKey);
    keep("admin token", ADMIN_TOKEN);
    keep("operator JWT", jwt);
    platform = spawnPlatform({
      PORT: String(port),
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: database.url,
      ZEN_STREAM_PREFIX: prefix,
      ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
      ZEN_MASTER_KEY: masterKey,
      ZEN_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
      ZEN_ALLOW_PRIVATE_TARGETS: "true",
      ZEN_CIRCUIT_FAILURE_THRESHOLD: "1000",
      LOG_LEVEL: "debug",
    });
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/ready`, 60_000);

    // Operators: the admin token and a JWT, both with Idempotency-Keys (their answers are kept).
    const operator = apiClient(base, { token: jwt });
    const admin = apiClient(base, { token: ADMIN_TOKEN });
    const withKey = (client: typeof admin) => (method: string, path: string, body?: unknown) => client(method, path, body, { "idempotency-key": randomUUID() });
    const tenant = await createTenant(base, "Secretive", undefined, withKey(operator));
    keep("API key", tenant.key);
    const second = await withKey(admin)("POST", `/v1/tenants/${tenant.id}/api-keys`, { name: "second", scopes: ["ingest"] });
    expect(second.status).toBe(201);
    keep("second API key", second.body.key);
    shown.push({ where: "the api key's create response", text: JSON.stringify(second.body) });
    const call = tenant.client;

    // Endpoints: one with its own secret, then rotated; one generated that fails echoing secrets.
    const ownSecret = `whsec_${randomBytes(24).toString("base64")}`;
    keep("endpoint secret (client's)", ownSecret);
    const good = await call("POST", "/v1/webhooks/registry", { url: receiver.url("/good"), eventTypes: ["*"], secret: ownSecret });
    expect(good.status).toBe(201);
    shown.push({ where: "the endpoint's create response", text: JSON.stringify(good.body) });
    const rotated = await call("POST", `/v1/webhooks/registry/${good.body.id}/rotate-secret`, { graceSeconds: 600 });
    expect(rotated.status).toBe(200);
    keep("endpoint secret (rotated)", rotated.body.secret);
    receiver.setSecret("/good", rotated.body.secret);
    const leaky = await call("POST", "/v1/webhooks/registry", { url: receiver.url("/leaky"), eventTypes: ["order.created"], retryPolicy: QUICK_DEATH });
    expect(leaky.status).toBe(201);
    keep("endpoint secret (generated)", leaky.body.secret);
    receiver.setSecret("/leaky", leaky.body.secret);
    receiver.behave("/leaky", {
      status: 500,
      headers: { "www-authenticate": `Bearer ${tenant.key}`, "x-echo-secret": leaky.body.secret },
      // What a careless receiver echoes: a bearer token it was sent elsewhere, and its signing secret.
      body: `denied: Authorization: Bearer ${tenant.key}, token Bearer ${ADMIN_TOKEN}, signed with ${leaky.body.secret}`,
    });

    // A receiver that echoes credentials of its own in its error body, as JSON and as a form.
    const echoedToken = randomBytes(20).toString("hex");
    const echoedPassword = randomBytes(20).toString("hex");
    keep("access token a receiver echoes", echoedToken);
    keep("password a receiver echoes", echoedPassword);
    const echo = await call("POST", "/v1/webhooks/registry", { url: receiver.url("/echo"), eventTypes: ["order.created"], retryPolicy: QUICK_DEATH });
    expect(echo.status).toBe(201);
    keep("endpoint secret (echo)", echo.body.secret);
    receiver.setSecret("/echo", echo.body.secret);
    receiver.behave("/echo", { status: 500, body: `{"error":"invalid_client","access_token":"${echoedToken}"}\nretry with user=bob&password=${echoedPassword}` });

    // Inbound sources: a provider's secret (github) and a generated one, and a signed request.
    const githubSecret = `gh-${randomBytes(20).toString("hex")}`;
    keep("source secret (provider's)", githubSecret);
    const github = await call("POST", "/v1/webhooks/sources", { name: "GitHub", scheme: "github", secret: githubSecret });
    expect(github.status).toBe(201);
    const standard = await call("POST", "/v1/webhooks/sources", { name: "Partner", scheme: "standard-webhooks" });
    expect(standard.status).toBe(201);
    keep("source secret (generated)", standard.body.secret);
    const inboundBody = JSON.stringify({ action: "opened", number: 7 });
    const inbound = await fetch(`${base}/v1/inbound/${tenant.id}/${github.body.id}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "order.opened",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await githubSign(githubSecret, inboundBody),
      },
      body: inboundBody,
    });
    expect(inbound.status).toBe(202);

    // Ingest, deliveries (the leaky ones die), a DLQ replay, test sends.
    for (let i = 0; i < 3; i++) expect((await call("POST", "/v1/webhooks/ingest", { eventType: "order.created", payload: { i } })).status).toBe(202);
    await eventually(async () => (await dlqOf(call, leaky.body.id)).length === 3, 60_000, "the leaky endpoint's deliveries in the DLQ");
    await eventually(async () => (await dlqOf(call, echo.body.id)).length === 3, 60_000, "the echoing endpoint's deliveries in the DLQ");
    const replay = await call("POST", "/v1/webhooks/dlq/replay", { filter: { endpointId: leaky.body.id } }, { "idempotency-key": "replay-leaky" });
    expect(replay.status).toBe(202);
    await eventually(
      async () => (await call("GET", `/v1/webhooks/dlq/replay/${replay.body.replayId}`)).body.failed === 3,
      60_000,
      "the replayed deliveries to die again",
    );
    const testToLeaky = await call("POST", "/v1/webhooks/test", { endpointId: leaky.body.id, eventType: "order.test", payload: {} });
    expect(testToLeaky.status).toBe(200);
    expect(testToLeaky.body.status).toBe(500);
    const testToEcho = await call("POST", "/v1/webhooks/test", { endpointId: echo.body.id, eventType: "order.test", payload: {} });
    expect(testToEcho.body.status).toBe(500);
    // The preview keeps the key names and loses their values.
    expect(testToEcho.body.responseBodyPreview).toContain('"access_token":"[REDACTED:secret-field]"');
    expect(testToEcho.body.responseBodyPreview).toContain("password=[REDACTED:secret-field]");
    const testToUrl = await call("POST", "/v1/webhooks/test", { url: receiver.url("/bare"), eventType: "order.test", payload: {} });
    expect(testToUrl.body.ok).toBe(true);
    keep("test-send one-off secret", testToUrl.body.secret);
    await eventually(() => new Set(receiver.on("/good").map((r) => r.webhookId)).size === 4, 30_000, "the good endpoint's deliveries");
    expect(receiver.on("/good").every((r) => r.verified)).toBe(true);
    await eventually(async () => (await call("GET", "/v1/webhooks/deliveries?status=succeeded&limit=500")).body.data.length === 4, 30_000, "the read model");

    // Everything written: the process's output (after a clean stop, so nothing is left unflushed),
    // the streams of its prefix (events and KV buckets), the rows of its database.
    platform.child.kill("SIGTERM");
    expect(await platform.exited).toBe(0);
    captures = [
      { where: "stdout", text: platform.stdout.join("") },
      { where: "stderr", text: platform.stderr.join("") },
      ...(await rawMessagesOf(prefix)).map((m) => ({ where: `${m.stream}#${m.seq} (${m.subject})`, text: m.text })),
      ...(await allRows(database.url)).map((r) => ({ where: `table ${r.table}`, text: r.row })),
    ];
  }, 180_000);

  afterAll(async () => {
    if (platform && platform.child.exitCode === null) platform.child.kill("SIGKILL");
    await receiver?.close();
    await deleteTestStream(prefix);
    await database?.drop();
  });

  it("captured a real run: debug logs, the events, KV entries and read-model rows", () => {
    const where = captures.map((c) => c.where);
    expect(captures[0]!.text).toMatch(/"level":20/);
    expect(where.some((w) => w.startsWith(`${createTopology(prefix).stream}#`))).toBe(true);
    expect(where.some((w) => w.startsWith("KV_"))).toBe(true);
    for (const table of ["endpoints", "deliveries", "audit_log"]) expect(where).toContain(`table ${table}`);
    expect(secrets.size).toBeGreaterThanOrEqual(17);
  });

  it("the scanner finds a secret where one is: in the responses that showed them, and planted", () => {
    expect(findSecrets(shown, secrets)).toEqual(
      expect.arrayContaining(["second API key in the api key's create response", "endpoint secret (client's) in the endpoint's create response"]),
    );
    const planted = [...captures, { where: "a planted line", text: `{"msg":"oops","token":"${secrets.get("API key")}"}` }];
    expect(findSecrets(planted, secrets)).toContain("API key in a planted line");
  });

  it("finds no secret, API key or token in the process output, the streams, the KV buckets or the rows", () => {
    expect(findSecrets(captures, secrets)).toEqual([]);
  });
});
