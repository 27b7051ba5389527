import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { databaseUrl, NATS_URL, newDatabaseName, PG_SERVER_URL, RUN_ID } from "./env.js";

/**
 * Streams and databases the bench creates, and their removal. Everything is named after RUN_ID,
 * so the final sweep removes exactly what this invocation made, even if a scenario died half-way.
 */
let admin: { nc: NatsConnection; jsm: JetStreamManager } | undefined;

export async function natsAdmin(): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  if (!admin) {
    const nc = await connect({ servers: NATS_URL, name: `bench-admin-${RUN_ID}`, noAsyncTraces: true, timeout: 5_000 });
    admin = { nc, jsm: await jetstreamManager(nc) };
  }
  return admin;
}

/**
 * Deletes the streams of one ZEN_STREAM_PREFIX (`<PREFIX>_*`, KV buckets `KV_<PREFIX>_*`), or with
 * `anySuffix` every stream whose name starts with `namePrefix` (the final sweep of a run).
 */
export async function deleteStreams(namePrefix: string, anySuffix = false): Promise<string[]> {
  const { jsm } = await natsAdmin();
  const upper = anySuffix ? namePrefix.toUpperCase() : `${namePrefix.toUpperCase()}_`;
  const deleted: string[] = [];
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(upper) || name.startsWith(`KV_${upper}`)) {
      if (await jsm.streams.delete(name).catch(() => false)) deleted.push(name);
    }
  }
  return deleted;
}

/** Stream sequence of the last message (0 when empty or absent). */
export async function streamLastSeq(stream: string): Promise<number> {
  const { jsm } = await natsAdmin();
  const info = await jsm.streams.info(stream).catch(() => null);
  return info?.state.last_seq ?? 0;
}

export async function consumerInfo(stream: string, durable: string) {
  const { jsm } = await natsAdmin();
  return jsm.consumers.info(stream, durable).catch(() => null);
}

/**
 * Waits until every message of the stream has reached the router's consumer and been routed, and
 * the dispatcher's consumer has been handed every delivery at least once (what it holds unacked —
 * retries waiting — may remain): a backlog then exists as scheduled deliveries, not as events in
 * flight.
 */
export async function waitUntilScheduled(prefix: string, deadlineMs = 15 * 60_000): Promise<void> {
  const upper = prefix.toUpperCase();
  const stream = `${upper}_EVENTS`;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const router = await consumerInfo(stream, `${upper}_ROUTER`);
    const dispatcher = await consumerInfo(stream, `${upper}_DISPATCHER`);
    if (router?.num_pending === 0 && router.num_ack_pending === 0 && dispatcher?.num_pending === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `not yet scheduled after ${deadlineMs / 1000} s: router ${router?.num_pending} pending / ${router?.num_ack_pending} unacked, dispatcher ${dispatcher?.num_pending} pending`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function onServer<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl("postgres"), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createDatabase(name = newDatabaseName()): Promise<BenchDatabase> {
  await onServer((c) => c.query(`CREATE DATABASE "${name}"`));
  return { name, url: databaseUrl(name), drop: () => dropDatabase(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  await onServer(async (c) => {
    await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
    await c.query(`DROP DATABASE IF EXISTS "${name}"`);
  });
}

/** Drops every database of this run: `zen_bench_<RUN_ID>_*`. */
export async function dropRunDatabases(): Promise<string[]> {
  const names = await onServer(async (c) =>
    (await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [`zen_bench_${RUN_ID}_%`])).rows.map((r) => r.datname),
  );
  for (const name of names) await dropDatabase(name);
  return names;
}

/** A single-connection client on one database (for checkpoints and version queries). */
export async function pgClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  return client;
}

/** The read models' checkpoint (0 before the projector committed anything, or before migration). */
export async function readModelCheckpoint(client: pg.Client): Promise<number> {
  try {
    const { rows } = await client.query<{ last_seq: string }>("SELECT last_seq FROM projection_checkpoints WHERE projection = 'read_models'");
    return Number(rows[0]?.last_seq ?? 0);
  } catch {
    return 0;
  }
}

/** Removes every stream and database of this run and closes the admin connection. Never throws. */
export async function sweep(): Promise<{ streams: string[]; databases: string[] }> {
  const result = { streams: [] as string[], databases: [] as string[] };
  try {
    result.streams = await withTimeout(deleteStreams(`bench${RUN_ID}`, true), 30_000);
  } catch (e) {
    console.error(`bench: stream cleanup failed: ${(e as Error).message}`);
  }
  try {
    result.streams.push(...(await withTimeout(deleteStreams(`ceil${RUN_ID}`, true), 30_000)));
  } catch {
    /* reported above */
  }
  try {
    result.databases = await withTimeout(dropRunDatabases(), 60_000);
  } catch (e) {
    console.error(`bench: database cleanup failed: ${(e as Error).message}`);
  }
  await admin?.nc.close().catch(() => undefined);
  admin = undefined;
  return result;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export { PG_SERVER_URL };
