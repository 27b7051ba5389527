import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

/** Where the bench finds the machine's NATS and Postgres (the same variables the platform reads). */
export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
export const PG_SERVER_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
/** The operator token of every platform the bench starts. */
export const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** This invocation's id: every stream prefix and database name the bench creates starts with it. */
export const RUN_ID = randomBytes(4).toString("hex");
let counter = 0;
/** A short suffix unique within this invocation. */
export const nextSuffix = (): string => (counter++).toString(36);
/** A fresh ZEN_STREAM_PREFIX: `bench<run id><n>` (lower-case letters and digits, as the platform requires). */
export const newPrefix = (): string => `bench${RUN_ID}${nextSuffix()}`;
/** A fresh database name: `zen_bench_<run id>_<n>`. */
export const newDatabaseName = (): string => `zen_bench_${RUN_ID}_${nextSuffix()}`;

/** `url` with its path replaced by `/name`. */
export function databaseUrl(name: string, server = PG_SERVER_URL): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
