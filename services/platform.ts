import type { FastifyInstance } from "fastify";
import { createDatabase, ensureDatabaseExists, type Database } from "../projections/db.js";
import { migrate } from "../projections/migrate.js";
import { createProjector } from "../projections/projector.js";
import { connectStreams, ensureEventStream, type Streams } from "../streams/connection.js";
import { createEventStore } from "../streams/event-store.js";
import { createRegistryView, type RegistryView } from "../streams/registry-view.js";
import { createTopology } from "../streams/topology.js";
import { buildApp } from "./api/app.js";
import { createDispatcher } from "./dispatcher/dispatcher.js";
import { createHttpSender } from "./dispatcher/http-sender.js";
import { createReplayer } from "./replayer/replayer.js";
import { createRouter } from "./router/router.js";
import type { Config } from "./shared/config.js";
import type { Logger } from "./shared/logger.js";
import { createSecretBox } from "./shared/secret-box.js";

/** A dependency the platform could not reach, with what to do about it. */
export class DependencyUnreachable extends Error {
  override name = "DependencyUnreachable";
}

export interface Platform {
  /** The api's address when the api role runs, e.g. http://127.0.0.1:3000. */
  url: string | undefined;
  streams: Streams;
  db: Database | undefined;
  /** Stops taking requests, drains the consumers, then closes every connection. */
  stop(): Promise<void>;
}

interface Stoppable {
  stop(): Promise<void>;
}

/** Starts the roles of `config.roles` in this process, sharing one NATS connection and one pool. */
export async function startPlatform(config: Config, logger: Logger): Promise<Platform> {
  const topology = createTopology(config.streamPrefix);
  const streams = await connectNats(config);
  const needsDatabase = config.roles.includes("api") || config.roles.includes("projector");
  const db = needsDatabase ? await connectDatabase(config) : undefined;
  await ensureEventStream(streams.jsm, topology, config.streamReplicas);

  const store = createEventStore({ js: streams.js, jsm: streams.jsm, topology });
  const secretBox = createSecretBox(config.masterKey);
  if (!config.masterKey) logger.warn("ZEN_MASTER_KEY is not set: endpoint secrets are sealed with the development key");
  const stopping: Stoppable[] = [];
  let view: RegistryView | undefined;
  if (config.roles.some((role) => role !== "projector")) {
    view = createRegistryView({ js: streams.js, topology, keepHistory: config.roles.includes("router") });
    await view.start();
  }
  if (db && config.roles.includes("projector")) {
    const projector = createProjector({ db, js: streams.js, jsm: streams.jsm, topology, logger: logger.child({ role: "projector" }) });
    await projector.start();
    stopping.push(projector);
  }
  if (view && config.roles.includes("router")) {
    const router = createRouter({ js: streams.js, jsm: streams.jsm, store, view, topology, logger: logger.child({ role: "router" }) });
    await router.start();
    stopping.push(router);
  }
  if (view && config.roles.includes("dispatcher")) {
    const sender = createHttpSender({ targetPolicy: { allowPrivate: config.allowPrivateTargets, allowedCidrs: config.allowedTargetCidrs } });
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
      breaker: config.circuit,
      endpointDisableAfterMs: config.endpointDisableAfterMs,
    });
    await dispatcher.start();
    stopping.push(dispatcher, { stop: () => sender.close() });
  }
  if (config.roles.includes("replayer")) {
    const replayer = createReplayer({ js: streams.js, jsm: streams.jsm, store, topology, logger: logger.child({ role: "replayer" }) });
    await replayer.start();
    stopping.push(replayer);
  }
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  if (db && view && config.roles.includes("api")) {
    app = await buildApp({ config, store, view, db, streams, secretBox, logger, topology });
    url = await app.listen({ port: config.port, host: config.host });
  }
  if (view) stopping.push(view);

  return {
    url,
    streams,
    db,
    async stop() {
      await app?.close();
      for (const part of stopping) await part.stop();
      await streams.nc.drain();
      await db?.end();
    },
  };
}

async function connectNats(config: Config): Promise<Streams> {
  try {
    return await connectStreams(config.natsUrl);
  } catch (error) {
    throw new DependencyUnreachable(
      `cannot reach NATS with JetStream at ${config.natsUrl} (${describe(error)}): start nats-server with -js, or set NATS_URL`,
    );
  }
}

async function connectDatabase(config: Config): Promise<Database> {
  try {
    await ensureDatabaseExists(config.databaseUrl);
    const db = await createDatabase(config.databaseUrl);
    await migrate(db);
    return db;
  } catch (error) {
    throw new DependencyUnreachable(
      `cannot reach PostgreSQL at ${withoutPassword(config.databaseUrl)} (${describe(error)}): start PostgreSQL, or set DATABASE_URL`,
    );
  }
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return [e.code, e.message?.split("\n")[0]].filter(Boolean).join(": ") || String(error);
}

function withoutPassword(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
