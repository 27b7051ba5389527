import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "slonik";
import { z } from "zod";
import { createProjector, type Projector } from "../projections/index.js";
import { createLogger } from "../services/shared/logger.js";
import { createTopology } from "../streams/topology.js";
import { eventually } from "./support/receiver.js";
import { ADMIN_TOKEN, apiClient, startTestPlatform, type TestPlatform } from "./support/platform.js";

describe("health: /ready degraded while the read models are behind, /readyz on migrations", () => {
  let zen: TestPlatform;
  let projector: Projector | undefined;
  const get = async (path: string) => {
    const response = await fetch(`${zen.url}${path}`);
    return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, boolean> } };
  };

  beforeAll(async () => {
    // Every role but the projector: nothing applies events to the read models.
    zen = await startTestPlatform({ ZEN_ROLES: "api,router,dispatcher,replayer", ZEN_READY_MAX_LAG_EVENTS: "3" });
  });

  afterAll(async () => {
    await projector?.stop();
    await zen?.stop();
  });

  it("is alive and ready before any event", async () => {
    expect(await get("/health")).toEqual({ status: 200, body: { status: "ok" } });
    expect(await get("/ready")).toEqual({
      status: 200,
      body: { status: "ready", checks: { nats: true, postgres: true, consumers: true, readModels: true } },
    });
  });

  it("says degraded, still 200, when only the read models are behind", async () => {
    const admin = apiClient(zen.url, { token: ADMIN_TOKEN });
    for (let i = 0; i < 5; i++) expect((await admin("POST", "/v1/tenants", { name: `T${i}` })).status).toBe(201);
    expect(await get("/ready")).toEqual({
      status: 200,
      body: { status: "degraded", checks: { nats: true, postgres: true, consumers: true, readModels: false } },
    });
    // A projector catches up: ready again.
    const { db, streams } = zen.platform;
    const topology = createTopology(zen.config.streamPrefix);
    projector = createProjector({ db: db!, js: streams.js, jsm: streams.jsm, topology, logger: createLogger("silent"), lockPollMs: 100 });
    await projector.start();
    await eventually(async () => (await get("/ready")).body.status === "ready", 20_000, "/ready to be ready again");
  });

  it("answers /readyz 200 when every migration is applied, 503 when one is missing", async () => {
    expect(await get("/readyz")).toEqual({ status: 200, body: { status: "ready", checks: { migrations: true } } });
    const db = zen.platform.db!;
    const row = await db.one(sql.type(z.object({ version: z.number(), name: z.string() }))`
      SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1`);
    const latest = row.version;
    await db.query(sql.unsafe`DELETE FROM schema_migrations WHERE version = ${latest}`);
    try {
      expect(await get("/readyz")).toEqual({ status: 503, body: { status: "unavailable", checks: { migrations: false } } });
    } finally {
      await db.query(sql.unsafe`INSERT INTO schema_migrations (version, name) VALUES (${row.version}, ${row.name})`);
    }
    expect((await get("/readyz")).status).toBe(200);
  });
});
