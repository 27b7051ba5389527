import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopology } from "../streams/topology.js";
import { readAllEvents } from "./support/nats.js";
import { type apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { eventually } from "./support/receiver.js";

/** One request as the loopback receiver got it: enough to verify it later with any secret. */
interface Captured {
  webhookId: string;
  raw: string;
  headers: Record<string, string>;
}

/** A receiver that keeps every request; the test verifies each with the old and the new secret. */
async function startCapturingReceiver() {
  const captured: Captured[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      captured.push({ webhookId: String(req.headers["webhook-id"]), raw: Buffer.concat(chunks).toString("utf8"), headers: req.headers as Record<string, string> });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    captured,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** Whether a receiver holding `secret` (verifying with the `standardwebhooks` package) accepts the request. */
const accepts = (secret: string, request: Captured): boolean => {
  try {
    new Webhook(secret).verify(request.raw, request.headers);
    return true;
  } catch {
    return false;
  }
};

const GRACE_SECONDS = 3;

describe("rotate-secret: both secrets sign during the grace, only the new one after", () => {
  let zen: TestPlatform;
  let receiver: Awaited<ReturnType<typeof startCapturingReceiver>>;
  let tenant: ReturnType<typeof apiClient>;
  let endpointId: string;
  let oldSecret: string;
  let newSecret: string;
  let rotatedAt: number;

  const deliverOne = async (label: string): Promise<Captured> => {
    const ingested = await tenant("POST", "/v1/webhooks/ingest", { eventType: "invoice.paid", payload: { label } });
    expect(ingested.status).toBe(202);
    const messageId = ingested.body.messageId as string;
    await eventually(() => receiver.captured.some((c) => c.webhookId === messageId), 15_000, `delivery of ${label}`);
    return receiver.captured.find((c) => c.webhookId === messageId)!;
  };
  const signatures = (request: Captured) => request.headers["webhook-signature"]!.split(" ");

  beforeAll(async () => {
    receiver = await startCapturingReceiver();
    zen = await startTestPlatform({ ZEN_MASTER_KEY: randomBytes(32).toString("hex") });
    tenant = (await createTenant(zen.url, "Rotating", ["ingest", "webhooks:read", "webhooks:write", "deliveries:read"])).client;
    const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url, eventTypes: ["invoice.*"] }, { "idempotency-key": randomUUID() });
    expect(endpoint.status).toBe(201);
    endpointId = endpoint.body.id;
    oldSecret = endpoint.body.secret;
  });
  afterAll(async () => {
    await zen?.stop();
    await receiver?.close();
  });

  it("before the rotation: one signature, by the endpoint's secret", async () => {
    const request = await deliverOne("before");
    expect(signatures(request)).toHaveLength(1);
    expect(accepts(oldSecret, request)).toBe(true);
  });

  it("rotates: a new whsec_ secret, returned only in the answer", async () => {
    rotatedAt = Date.now();
    const rotated = await tenant("POST", `/v1/webhooks/registry/${endpointId}/rotate-secret`, { graceSeconds: GRACE_SECONDS }, { "idempotency-key": randomUUID() });
    expect(rotated.status).toBe(200);
    newSecret = rotated.body.secret;
    expect(newSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(newSecret).not.toBe(oldSecret);
    expect(Date.parse(rotated.body.previousExpiresAt) - rotatedAt).toBeGreaterThan((GRACE_SECONDS - 1) * 1000);
    expect(Date.parse(rotated.body.previousExpiresAt) - rotatedAt).toBeLessThanOrEqual((GRACE_SECONDS + 1) * 1000);

    const read = await tenant("GET", `/v1/webhooks/registry/${endpointId}`, undefined, { "x-zen-min-seq": rotated.headers.get("x-zen-seq")! });
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty("secret");
    expect(JSON.stringify(read.body)).not.toContain(newSecret);
  });

  it("during the grace: receivers with the OLD and with the NEW secret both accept (new signature first)", async () => {
    const request = await deliverOne("during");
    expect(Date.now() - rotatedAt).toBeLessThan(GRACE_SECONDS * 1000);
    expect(signatures(request)).toHaveLength(2);
    expect(accepts(oldSecret, request)).toBe(true);
    expect(accepts(newSecret, request)).toBe(true);
    const onlyFirst = { ...request, headers: { ...request.headers, "webhook-signature": signatures(request)[0]! } };
    expect(accepts(newSecret, onlyFirst)).toBe(true);

    // The test send signs as deliveries do.
    const sent = await tenant("POST", "/v1/webhooks/test", { endpointId, eventType: "invoice.paid", payload: { test: true } });
    expect(sent.status).toBe(200);
    const testRequest = receiver.captured.find((c) => c.webhookId.startsWith("msg_test_"))!;
    expect(accepts(oldSecret, testRequest)).toBe(true);
    expect(accepts(newSecret, testRequest)).toBe(true);
  });

  it("after the grace: only the new secret signs", async () => {
    const wait = rotatedAt + GRACE_SECONDS * 1000 + 200 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const request = await deliverOne("after");
    expect(signatures(request)).toHaveLength(1);
    expect(accepts(newSecret, request)).toBe(true);
    expect(accepts(oldSecret, request)).toBe(false);
  });

  it("the delivery reads (tenant-bound, as the RLS reader role) show every delivery with its attempts and routing", async () => {
    // The outcomes are recorded just after the receiver answered: wait until the read models have them.
    const succeeded = async () => (await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=10")).body.data as Array<{ id: string }>;
    await eventually(async () => (await succeeded()).length === 3, 10_000, "three succeeded deliveries");
    const deliveries = await succeeded();
    const detail = await tenant("GET", `/v1/webhooks/deliveries/${deliveries[0]!.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.attempts.length).toBeGreaterThanOrEqual(1);
    expect(detail.body.routing).toMatchObject({ strategy: "fanout" });
  });

  it("neither secret is ever in the events in plain text, nor in any log line; the rotation is audited without it", async () => {
    const events = await readAllEvents(zen.platform.streams, createTopology(zen.config.streamPrefix));
    const rotation = events.find((e) => e.envelope.type === "endpoint.secret_rotated");
    expect(rotation?.envelope.data).toEqual({ secret: expect.stringMatching(/^enc:v1:/), previousExpiresAt: expect.any(String) });
    const everything = JSON.stringify(events) + zen.logLines.join("");
    for (const secret of [oldSecret, newSecret]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice("whsec_".length));
    }
  });
});
