import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { Kvm } from "@nats-io/kv";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { createDatabase, createProjector, migrate, type Database } from "../../projections/index.js";
import { createEventStore } from "../../streams/event-store.js";
import { createRegistryView } from "../../streams/registry-view.js";
import { createTestStreams, type TestStreams } from "../../test/support/nats.js";
import { IDEMPOTENT_METHODS } from "./idempotency.js";
import { createTestDatabase } from "../../test/support/postgres.js";
import { createLogger } from "../shared/logger.js";
import { createSecretBox } from "../shared/secret-box.js";
import { buildApp, type ApiDeps } from "./app.js";
import { createEventIdClaims } from "./event-ids.js";
import { createKeyUsage } from "./key-usage.js";

export const ADMIN_TOKEN = "api-test-admin-token-0123456789";
export const MAX_BODY_BYTES = 16 * 1024;

export interface ApiHarness {
  app: FastifyInstance;
  deps: ApiDeps;
  streams: TestStreams;
  db: Database;
  /** Every log line the api wrote. */
  logLines: string[];
  /**
   * `app.inject` with the operator's or a key's credentials and JSON encoding; every POST, PATCH and
   * DELETE carries a fresh Idempotency-Key unless `headers` names one or `idempotencyKey` is null.
   */
  call(options: CallOptions): Promise<LightMyRequestResponse>;
  stop(): Promise<void>;
}

export interface CallOptions {
  method: InjectOptions["method"];
  url: string;
  token?: string | null;
  tenantId?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** null: send no Idempotency-Key (to see a route require one). */
  idempotencyKey?: string | null;
}

/** A fresh Idempotency-Key for a mutation, as a careful client sends (routes like the registry require one). */
export function idempotencyHeader(method: string | undefined, key: string | null | undefined = randomUUID()): Record<string, string> {
  return IDEMPOTENT_METHODS.has(String(method).toUpperCase()) && key !== null ? { "idempotency-key": key } : {};
}

/** The api on a fresh stream prefix and database, with a projector and the registry view running. */
export async function startApiHarness(overrides: Partial<ApiDeps> = {}): Promise<ApiHarness> {
  const streams = await createTestStreams();
  const database = await createTestDatabase();
  const db = await createDatabase(database.url);
  await migrate(db);
  const logLines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logLines.push(chunk.toString("utf8")), done()) });
  const logger = createLogger("info", sink);
  const { js, jsm, topology } = streams;
  const projector = createProjector({ db, js, jsm, topology, logger: createLogger("silent"), lockPollMs: 100 });
  await projector.start();
  const view = createRegistryView({ js, jsm, topology });
  await view.start();
  const store = createEventStore({ nc: streams.nc, jsm, topology });
  const deps: ApiDeps = {
    config: { adminToken: ADMIN_TOKEN, maxBodyBytes: MAX_BODY_BYTES, allowPrivateTargets: false },
    store,
    // Shared by every app built from these deps, so a test can wait for the key uses it caused.
    keyUsage: createKeyUsage(store, logger),
    view,
    db,
    streams,
    eventIds: await createEventIdClaims(streams.nc, topology),
    secretBox: createSecretBox(undefined),
    logger,
    topology,
    ...overrides,
  };
  const app = await buildApp(deps);
  const call = ({ method, url, token = ADMIN_TOKEN, tenantId, body, headers = {}, idempotencyKey }: CallOptions) =>
    app.inject({
      method,
      url,
      headers: {
        ...idempotencyHeader(method, idempotencyKey),
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(tenantId ? { "x-tenant-id": tenantId } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { payload: typeof body === "string" ? body : JSON.stringify(body) }),
    });
  return {
    app,
    deps,
    streams,
    db,
    logLines,
    call,
    async stop() {
      await app.close();
      await deps.keyUsage?.settled();
      await projector.stop();
      await view.stop();
      for (const bucket of ["event_ids", "idempotency", "ingress"]) {
        await new Kvm(streams.nc)
          .open(topology.bucketName(bucket))
          .then((kv) => kv.destroy())
          .catch(() => false);
      }
      await streams.cleanup();
      await db.end();
      await database.drop();
    },
  };
}

/** Creates a tenant and a key with `scopes` through the api; returns their ids and the key. */
export async function createTenantWithKey(h: ApiHarness, scopes: string[], name = "Acme") {
  const tenant = await h.call({ method: "POST", url: "/v1/tenants", body: { name } });
  const tenantId = tenant.json().id as string;
  const created = await h.call({ method: "POST", url: `/v1/tenants/${tenantId}/api-keys`, body: { name: "test key", scopes } });
  const { id: keyId, key } = created.json() as { id: string; key: string };
  return { tenantId, keyId, key };
}
