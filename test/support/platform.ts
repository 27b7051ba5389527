import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../services/shared/config.js";
import { createLogger } from "../../services/shared/logger.js";
import { startPlatform, type Platform, type PlatformDeps } from "../../services/platform.js";
import { deleteTestStream, uniquePrefix, TEST_NATS_URL } from "./nats.js";
import { createTestDatabase } from "./postgres.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface TestPlatform {
  platform: Platform;
  config: Config;
  url: string;
  /** Every log line the platform wrote, as text. */
  logLines: string[];
  stop(): Promise<void>;
}

/** What a platform process spawned by a test needs: the machine's NATS, its own database and stream prefix, quiet logs. */
export function platformProcessEnv(databaseUrl: string, prefix: string): Record<string, string> {
  return {
    NATS_URL: TEST_NATS_URL,
    DATABASE_URL: databaseUrl,
    ZEN_STREAM_PREFIX: prefix,
    ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
    ZEN_ALLOW_PRIVATE_TARGETS: "true",
    LOG_LEVEL: "warn",
  };
}

/** The whole platform in this process, on its own stream prefix and database, api on a free port. */
export async function startTestPlatform(env: Record<string, string> = {}, deps: PlatformDeps = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const prefix = uniquePrefix();
  const config = loadConfig({
    PORT: "0",
    NATS_URL: TEST_NATS_URL,
    DATABASE_URL: database.url,
    ZEN_STREAM_PREFIX: prefix,
    ZEN_ADMIN_TOKEN: ADMIN_TOKEN,
    ZEN_ALLOW_PRIVATE_TARGETS: "true",
    LOG_LEVEL: "info",
    ...env,
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString("utf8"));
      done();
    },
  });
  const platform = await startPlatform(config, createLogger(config.logLevel, sink), deps);
  return {
    platform,
    config,
    url: platform.url!,
    logLines,
    async stop() {
      await platform.stop();
      await deleteTestStream(prefix);
      await database.drop();
    },
  };
}

/** Routes whose mutations require an Idempotency-Key (API.md "Conventions"); DLQ replay names its own. */
const KEY_REQUIRED = /^\/v1\/webhooks\/(registry|sources)(\/|$)/;

/**
 * A small JSON client for the platform's api. Registry and source mutations carry a fresh
 * Idempotency-Key, as they must, unless `headers` names its own; other calls send only what they are given.
 */
export function apiClient(baseUrl: string, credentials: { token: string; tenantId?: string }) {
  return async <T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${credentials.token}`,
        ...(credentials.tenantId ? { "x-tenant-id": credentials.tenantId } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(method.toUpperCase() !== "GET" && KEY_REQUIRED.test(path) ? { "idempotency-key": randomUUID() } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as T };
  };
}
