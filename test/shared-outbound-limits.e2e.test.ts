import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_NATS_URL } from "./support/nats.js";
import { startTestPlatform, type TestPlatform } from "./support/platform.js";
import { createTenant } from "./support/tenants.js";
import { freePort, spawnPlatform, waitForHttp, type PlatformProcess } from "./support/process.js";
import { eventually, startReceiver, type Receiver } from "./support/receiver.js";

const PER_SECOND = 10;
/** Enough that even twice the rate (unshared buckets) would outlast the window. */
const EVENTS = 450;
const WINDOW_MS = 16_000;
/** The window starts at this arrival, past the bucket's burst and the backlog's ingest. */
const WINDOW_STARTS_AT = 20;

/**
 * Two dispatcher processes (children running `services/main.ts` with only the dispatcher role)
 * beside the other roles in this process, on one stream prefix and database: an endpoint's
 * `rateLimit` holds for both together (its bucket is shared through `<PREFIX>_OUTBOUND`), not twice.
 */
describe("outbound rate limits shared by two dispatcher processes", () => {
  let receiver: Receiver;
  let zen: TestPlatform;
  const dispatchers: PlatformProcess[] = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    zen = await startTestPlatform({ ZEN_ROLES: "api,router,projector,replayer" });
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const child = spawnPlatform({
        NATS_URL: TEST_NATS_URL,
        DATABASE_URL: zen.config.databaseUrl,
        ZEN_STREAM_PREFIX: zen.config.streamPrefix,
        ZEN_ROLES: "dispatcher",
        ZEN_OPS_PORT: String(port),
        ZEN_ALLOW_PRIVATE_TARGETS: "true",
        LOG_LEVEL: "info",
      });
      dispatchers.push(child);
      await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000).catch((error: unknown) => {
        throw new Error(`${String(error)}; stderr: ${child.stderr.join("")}`);
      });
    }
  }, 150_000);

  afterAll(async () => {
    for (const child of dispatchers) {
      if (child.child.exitCode === null) {
        child.child.kill("SIGTERM");
        await child.exited;
      }
    }
    await zen?.stop();
    await receiver?.close();
  });

  it("delivers to a rate-limited endpoint at its rate, not twice it, spending no attempts", async () => {
    const tenant = (await createTenant(zen.url, "Two dispatchers", ["ingest", "webhooks:write", "deliveries:read"])).client;
    const endpoint = await tenant("POST", "/v1/webhooks/registry", { url: receiver.url("/limited"), eventTypes: ["limited.*"], rateLimit: { perSecond: PER_SECOND } });
    expect(endpoint.status).toBe(201);

    const ingests = [];
    for (let i = 0; i < EVENTS; i++) ingests.push(tenant("POST", "/v1/webhooks/ingest", { eventType: "limited.tick", payload: { i } }));
    expect((await Promise.all(ingests)).every((r) => r.status === 202)).toBe(true);

    const arrivals = () =>
      receiver
        .on("/limited")
        .map((r) => r.at)
        .sort((a, b) => a - b);
    const windowStart = () => arrivals()[WINDOW_STARTS_AT - 1] ?? Infinity;
    // Delivered past the window's end: the backlog (450 at 10/s, or 20/s) outlasts it, so the limit sets the rate.
    await eventually(() => arrivals().some((at) => at >= windowStart() + WINDOW_MS), 60_000, "deliveries past a 16 s window");
    const start = windowStart();
    const rate = arrivals().filter((at) => at >= start && at < start + WINDOW_MS).length / (WINDOW_MS / 1000);
    console.log(`two dispatchers, rateLimit ${PER_SECOND}/s: measured ${rate.toFixed(2)}/s over ${WINDOW_MS / 1000} s`);
    expect(rate).toBeGreaterThanOrEqual(PER_SECOND * 0.85);
    expect(rate).toBeLessThanOrEqual(PER_SECOND * 1.15);

    // Both processes delivered (else one dispatcher alone would pass this test); how the server
    // splits the backlog between them is its own affair, so each need only take a real share.
    const attemptsOf = (child: PlatformProcess) =>
      child.stdout
        .join("")
        .split("\n")
        .filter((line) => line.includes('"delivery attempt"')).length;
    const perProcess = dispatchers.map(attemptsOf);
    console.log(`attempts logged per dispatcher: ${perProcess.join(", ")}`);
    for (const attempts of perProcess) expect(attempts).toBeGreaterThanOrEqual(5);

    // Waiting for a token is not a failed attempt.
    const deliveries = await tenant("GET", "/v1/webhooks/deliveries?status=succeeded&limit=50");
    expect(deliveries.body.data.length).toBeGreaterThan(0);
    expect(deliveries.body.data.every((d: { attempts: number }) => d.attempts === 1)).toBe(true);
  }, 150_000);
});
