import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance } from "fastify";
import { AuthorizationError, UserAuthenticationExpiredError } from "@nats-io/transport-node";
import { bypassesRowSecurity, createDatabase, ensureDatabaseExists, type Database } from "../projections/db.js";
import { migrate } from "../projections/migrate.js";
import { createProjector } from "../projections/projector.js";
import { connectStreams, ensureEventStream, type Streams } from "../streams/connection.js";
import { createEventStore } from "../streams/event-store.js";
import { createMessagePayloads } from "../streams/message-payloads.js";
import { createRegistryView, type RegistryView } from "../streams/registry-view.js";
import { createTopology } from "../streams/topology.js";
import { buildApp } from "./api/app.js";
import { createDispatcher } from "./dispatcher/dispatcher.js";
import { createHttpSender } from "./outbound/http-sender.js";
import { createSharedBuckets } from "./shared/shared-buckets.js";
import { createReplayer, REPLAYER_TRIES } from "./replayer/replayer.js";
import { createRouter } from "./router/router.js";
import { createParking } from "../streams/parking.js";
import type { Config } from "./shared/config.js";
import type { Logger } from "./shared/logger.js";
import { createSecretBox } from "./shared/secret-box.js";
import { createTracing, type Tracing } from "./shared/tracing.js";
import { CONSUMER_ROLES, createMetrics } from "./shared/metrics.js";
import { createProbes, projectorAlive } from "./probes.js";
import { createReadModels } from "./api/read-models.js";
import { createReadiness } from "./api/readiness.js";
import { buildOpsServer } from "./ops/ops-server.js";
import { migrationsApplied } from "../projections/index.js";

/** A dependency the platform could not reach, with what to do about it. */
export class DependencyUnreachable extends Error {
  override name = "DependencyUnreachable";
}

export interface Platform {
  /** The api's address when the api role runs, e.g. http://127.0.0.1:3000. */
  url: string | undefined;
  /** The ops server's address (`/metrics`, `/health`, `/ready`) when `ZEN_OPS_PORT` is set and the api role does not run. */
  opsUrl: string | undefined;
  streams: Streams;
  db: Database | undefined;
  /** Stops taking requests, drains the consumers, then closes every connection. */
  stop(): Promise<void>;
}

/** What a caller may hand in instead of what the platform would make from `config`. */
export interface PlatformDeps {
  /**
   * The tracer (tests: one over an in-memory exporter). By default the platform makes one from
   * `config.tracing`, the no-op one when tracing is off, and shuts it down on `stop`.
   */
  tracing?: Tracing;
}

interface Stoppable {
  stop(): Promise<void>;
}

/** Starts the roles of `config.roles` in this process, sharing one NATS connection and one pool. */
export async function startPlatform(config: Config, logger: Logger, deps: PlatformDeps = {}): Promise<Platform> {
  const topology = createTopology(config.streamPrefix, config.streamReplicas);
  const streams = await connectNats(config, logger);
  const needsDatabase = config.roles.includes("api") || config.roles.includes("projector");
  const db = needsDatabase ? await connectDatabase(config, logger) : undefined;
  await ensureEventStream(streams.jsm, topology, config.streamReplicas);
  const tracing = deps.tracing ?? (await createTracing(config.tracing));
  if (!deps.tracing && tracing.enabled) logger.info({ serviceName: config.tracing.serviceName }, "tracing on: spans go to the exporters of the OTEL_* variables");

  const store = createEventStore({ nc: streams.nc, jsm: streams.jsm, topology });
  const secretBox = createSecretBox(config.masterKey, config.masterKeysPrevious);
  if (!config.masterKey) logger.warn("ZEN_MASTER_KEY is not set: endpoint secrets are sealed with the development key");
  if (db && (await bypassesRowSecurity(db))) {
    logger.warn(
      "the DATABASE_URL user is a superuser or has BYPASSRLS: row-level security will not catch a tenant read that forgets its tenant scope; use a non-superuser owner (README, Row-level security)",
    );
  }
  const stopping: Stoppable[] = [];
  let view: RegistryView | undefined;
  if (config.roles.some((role) => role !== "projector")) {
    view = createRegistryView({ js: streams.js, jsm: streams.jsm, topology, keepHistory: config.roles.includes("router"), logger });
    await view.start();
  }
  // One metrics registry for every role of this process; its gauges read the probes on each scrape.
  const consumers = config.roles.filter((role) => (CONSUMER_ROLES as readonly string[]).includes(role));
  // Each loop the roles start below reports whether it runs; `/ready` reads them with the consumers.
  const loops: Array<() => boolean> = [];
  if (view) loops.push(view.following);
  const probes = createProbes({ jsm: streams.jsm, topology, consumers, loops, db, view });
  const metrics = createMetrics(probes);
  if (db && config.roles.includes("projector")) {
    const projector = createProjector({ db, js: streams.js, jsm: streams.jsm, topology, logger: logger.child({ role: "projector" }) });
    await projector.start();
    loops.push(projectorAlive(projector));
    stopping.push(projector);
  }
  /** Parking for one role's reactor: parked messages are events, counted in `webhook_parked_messages_total`. */
  const parkingFor = (role: (typeof CONSUMER_ROLES)[number], maxFailures = config.parkAfterFailures) =>
    createParking({
      js: streams.js,
      jsm: streams.jsm,
      store,
      topology,
      role,
      maxFailures,
      logger: logger.child({ role }),
      onParked: (reason) => metrics.parkedMessages.inc({ reactor: role, reason }),
    });
  // The payloads of routed messages, for the deliveries that name them (the router fills it, the dispatcher reads it).
  const payloads = createMessagePayloads({ jsm: streams.jsm, topology });
  if (view && config.roles.includes("router")) {
    const router = createRouter({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology,
      logger: logger.child({ role: "router" }),
      tracing,
      parking: parkingFor("router"),
      // Remembered only for a dispatcher of this process: another process reads them from the stream.
      payloads: config.roles.includes("dispatcher") ? payloads : undefined,
    });
    await router.start();
    loops.push(router.running);
    stopping.push(router);
  }
  if (view && config.roles.includes("dispatcher")) {
    // As many connections per origin as attempts in flight: endpoints sharing an origin (a platform's
    // customers on one SaaS) never wait for a connection held by a hanging sibling.
    const sender = createHttpSender({
      targetPolicy: { allowPrivate: config.allowPrivateTargets, allowedCidrs: config.allowedTargetCidrs },
      connectionsPerOrigin: config.deliveryConcurrency,
    });
    const dispatcher = createDispatcher({
      js: streams.js,
      jsm: streams.jsm,
      store,
      view,
      topology,
      sender,
      secretBox,
      logger: logger.child({ role: "dispatcher" }),
      concurrency: config.deliveryConcurrency,
      concurrencyPerEndpoint: config.deliveryConcurrencyPerEndpoint,
      concurrencyPerTenant: config.deliveryConcurrencyPerTenant,
      breaker: config.circuit,
      endpointDisableAfterMs: config.endpointDisableAfterMs,
      outboundBuckets: await createSharedBuckets(streams.nc, topology, "outbound"),
      metrics,
      tracing,
      parking: parkingFor("dispatcher"),
      payloads,
    });
    await dispatcher.start();
    loops.push(dispatcher.running);
    stopping.push(dispatcher, { stop: () => sender.close() });
  }
  if (config.roles.includes("replayer")) {
    const replayer = createReplayer({
      js: streams.js,
      jsm: streams.jsm,
      store,
      topology,
      logger: logger.child({ role: "replayer" }),
      // A failing replay request records `replay.failed` after its own tries; parking catches what cannot even record that.
      parking: parkingFor("replayer", Math.max(config.parkAfterFailures, REPLAYER_TRIES + 1)),
    });
    await replayer.start();
    loops.push(replayer.running);
    stopping.push(replayer);
  }
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  if (db && view && config.roles.includes("api")) {
    app = await buildApp({ config, store, view, db, streams, secretBox, logger, topology, metrics, probes, readyLag: config.readyLag, tracing });
    url = await app.listen({ port: config.port, host: config.host });
  }
  // Without the api, the ops server exposes the same registry; with it, the api's routes do.
  let ops: FastifyInstance | undefined;
  let opsUrl: string | undefined;
  if (config.opsPort !== undefined && !app) {
    const readiness = createReadiness({ nc: streams.nc, readModels: db && createReadModels(db), probes, lag: config.readyLag });
    ops = await buildOpsServer({ metrics, readiness, migrationsApplied: db && (() => migrationsApplied(db)), logger });
    opsUrl = await ops.listen({ port: config.opsPort, host: config.host });
  }
  if (view) stopping.push(view);

  return {
    url,
    opsUrl,
    streams,
    db,
    async stop() {
      await app?.close();
      await ops?.close();
      for (const part of stopping) await part.stop();
      await streams.nc.drain();
      await db?.end();
      // Flushes the spans still batched; an injected tracer is its owner's to shut down.
      if (!deps.tracing) await tracing.shutdown();
    },
  };
}

/** Network errors, and Postgres refusing connections while it starts or stops, are worth waiting out. */
const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "57P03", "57P01", "08006", "08001"]);

/**
 * Runs `connect` until it succeeds, once a second for up to `config.startupWaitSeconds` while
 * `transient` says the failure may pass (a dependency starting beside us, as in a compose file or
 * a pod), with one warning line per failed attempt; then `unreachable` says what to do.
 */
async function waitFor<T>(
  config: Config,
  logger: Logger,
  what: string,
  connect: () => Promise<T>,
  unreachable: (error: unknown) => DependencyUnreachable,
  transient: (error: unknown) => boolean = () => true,
): Promise<T> {
  const giveUpAt = Date.now() + config.startupWaitSeconds * 1_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      if (!transient(error) || Date.now() + STARTUP_RETRY_MS > giveUpAt) throw unreachable(error);
      const secondsLeft = Math.round((giveUpAt - Date.now()) / 1_000);
      logger.warn({ attempt, reason: describe(error) }, `waiting for ${what}: retrying in 1 s, giving up in ${secondsLeft} s (ZEN_STARTUP_WAIT_SECONDS)`);
      await sleep(STARTUP_RETRY_MS);
    }
  }
}

const STARTUP_RETRY_MS = 1_000;

function connectNats(config: Config, logger: Logger): Promise<Streams> {
  // A NATS URL's user part may be a token: none of it is shown.
  const natsUrl = config.natsUrl.replace(/\/\/[^/@,]*@/g, "//***@");
  return waitFor(
    config,
    logger,
    `NATS at ${natsUrl}`,
    () => connectStreams(config.natsUrl),
    (error) =>
      new DependencyUnreachable(
        refusedCredentials(error)
          ? `NATS at ${natsUrl} refused the credentials (${describe(error)}): set NATS_URL with a user and password or token the server accepts`
          : `cannot reach NATS with JetStream at ${natsUrl} (${describe(error)}): start nats-server with -js, or set NATS_URL`,
      ),
    // Credentials do not start to work by waiting.
    (error) => !refusedCredentials(error),
  );
}

const refusedCredentials = (error: unknown) => error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError;

/** Connects to Postgres, creating the database if missing, and migrates it: all of it retried while Postgres may be starting. */
function connectDatabase(config: Config, logger: Logger): Promise<Database> {
  return waitFor(
    config,
    logger,
    `PostgreSQL at ${withoutPassword(config.databaseUrl)}`,
    async () => {
      await ensureDatabaseExists(config.databaseUrl);
      const db = await createDatabase(config.databaseUrl);
      try {
        await migrate(db);
        return db;
      } catch (error) {
        await db.end();
        throw error;
      }
    },
    (error) => new DependencyUnreachable(`cannot reach PostgreSQL at ${withoutPassword(config.databaseUrl)} (${describe(error)}): start PostgreSQL, or set DATABASE_URL`),
    (error) => TRANSIENT_CODES.has(errorCode(error) ?? ""),
  );
}

/** The `code` of an error or of its cause (slonik wraps the driver's). */
function errorCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code;
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return [e.code, e.message?.split("\n")[0]].filter(Boolean).join(": ") || String(error);
}

function withoutPassword(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
