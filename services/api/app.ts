import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { authPlugin } from "./auth.js";
import type { ApiDeps } from "./deps.js";
import { registerDocs } from "./docs.js";
import { createEventIdClaims, openClaims } from "./event-ids.js";
import { createErrorHandler, notFoundHandler } from "./error-handler.js";
import { clientErrorHandler, DEFAULT_MAX_HEADER_BYTES, registerHardening, registerRequestDeadline } from "./hardening.js";
import { createIdempotencyStore } from "./idempotency-store.js";
import { idempotencyPlugin } from "./idempotency.js";
import { createIngressLimiter } from "./ingress-limit.js";
import { DEFAULT_INGRESS, ingressPlugin } from "./ingress-plugin.js";
import { DEFAULT_PAYLOAD_LIMITS } from "./payload-quota.js";
import { createStreamRoom } from "./stream-room.js";
import { createKeyUsage } from "./key-usage.js";
import { metricsPlugin } from "./metrics.js";
import { genReqId, plumbingPlugin } from "./plumbing.js";
import { createReadModels } from "./read-models.js";
import { createReadiness } from "./readiness.js";
import { auditRoutes } from "./routes/audit.js";
import { deliveryRoutes } from "./routes/deliveries.js";
import { inboundRoutes, INBOUND_REPLAY_TTL_MS, INBOUND_SIGNATURE_TTL_MS } from "./routes/inbound.js";
import { ingestRoutes } from "./routes/ingest.js";
import { registryReadRoutes } from "./routes/registry-reads.js";
import { registryRoutes } from "./routes/registry.js";
import { sourceReadRoutes } from "./routes/sources-reads.js";
import { sourceRoutes } from "./routes/sources.js";
import { createReplayReads, replayRoutes } from "./routes/replay.js";
import { parkedRoutes } from "./routes/parked.js";
import { tenantRoutes } from "./routes/tenants.js";
import { streamRoutes } from "./routes/streams.js";
import { testSendRoutes } from "./routes/test-send.js";
import { createSharedBuckets } from "../shared/shared-buckets.js";
import { migrationsApplied } from "../../projections/index.js";
import { createTenantFeed, type TenantFeed } from "../../streams/tenant-feed.js";
import { createMetrics } from "../shared/metrics.js";
import { healthRoutes, RequestLogController } from "../shared/ops-http.js";

export type { ApiDeps, Readiness, RegistryPort } from "./deps.js";

/** The request and idle-connection timeouts when the configuration names none (`ZEN_REQUEST_TIMEOUT_MS`, `ZEN_CONNECTION_TIMEOUT_MS`). */
const DEFAULT_TIMEOUTS = { requestMs: 30_000, connectionMs: 120_000 };

/**
 * The api as a Fastify app, not listening: `main` calls `listen`, tests call `inject`. Plumbing and
 * auth are app-wide hooks; each group of routes is a plugin in its own scope, given only the ports
 * it uses.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ role: "api" }),
    genReqId,
    requestIdHeader: false,
    bodyLimit: deps.config.maxBodyBytes,
    // Headers that take longer than this are a 408 (the body has its own deadline, `registerRequestDeadline`);
    // a connection silent both ways is closed.
    requestTimeout: deps.config.timeouts?.requestMs ?? DEFAULT_TIMEOUTS.requestMs,
    connectionTimeout: deps.config.timeouts?.connectionMs ?? DEFAULT_TIMEOUTS.connectionMs,
    return503OnClosing: true,
    // Oversized request headers get a 431 in the one error shape (`clientErrorHandler`).
    // Node looks for requests past their timeout only this often (30 s by default): every second.
    http: { maxHeaderSize: deps.config.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES, connectionsCheckingInterval: 1_000 },
    clientErrorHandler,
    // One line per request instead of fastify's two, with the tenant and the route; every line a
    // request logs names its id as `correlationId`.
    logController: new RequestLogController(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(createErrorHandler(deps.config.maxBodyBytes));
  app.setNotFoundHandler(notFoundHandler);
  // JSON only: without a text/plain parser, any other media type is a 415.
  app.removeContentTypeParser("text/plain");

  const now = deps.now ?? (() => new Date());
  const readModels = deps.readModels ?? createReadModels(deps.db);
  const readiness = deps.readiness ?? createReadiness({ nc: deps.streams?.nc, readModels, probes: deps.probes, lag: deps.readyLag });
  const metrics = deps.metrics ?? createMetrics();
  const eventIds = deps.eventIds ?? (await openKv(deps, "ingest dedupe", createEventIdClaims));
  const idempotency = deps.idempotency ?? (await openKv(deps, "Idempotency-Key", (nc, topology) => createIdempotencyStore(nc, topology, { box: deps.secretBox })));
  const ingress = deps.ingress ?? (await openKv(deps, "ingress limits", createIngressLimiter));
  const payloadBytes = deps.payloadBytes ?? (await openKv(deps, "payload limits", (nc, topology) => createSharedBuckets(nc, topology, "payload_bytes")));
  const payloadDefaults = deps.config.payloadLimits ?? DEFAULT_PAYLOAD_LIMITS;
  const room = createStreamRoom({ jsm: deps.streams?.jsm, stream: deps.topology.stream, maxBytes: deps.config.streamMaxBytes ?? -1 });
  const testSends = deps.testSends ?? (await openKv(deps, "test-send limits", (nc, topology) => createSharedBuckets(nc, topology, "test_sends")));
  const keyUsage = deps.keyUsage ?? createKeyUsage(deps.store, deps.logger.child({ role: "api" }));
  const inboundDeliveries =
    deps.inboundDeliveries ?? (await openKv(deps, "inbound replay protection", (nc, topology) => openClaims(nc, topology, "inbound_deliveries", INBOUND_REPLAY_TTL_MS)));
  const inboundSignatures =
    deps.inboundSignatures ??
    (await openKv(deps, "inbound replay protection", (nc, topology) => openClaims(nc, topology, "inbound_signatures", INBOUND_SIGNATURE_TTL_MS)));

  await registerHardening(app as unknown as FastifyInstance, deps.config.corsOrigins ?? []);
  registerRequestDeadline(app as unknown as FastifyInstance, deps.config.timeouts?.requestMs ?? DEFAULT_TIMEOUTS.requestMs);
  await registerDocs(app as unknown as FastifyInstance);
  await app.register(plumbingPlugin);
  await app.register(metricsPlugin, { metrics });
  await app.register(authPlugin, { config: deps.config, store: deps.store, view: deps.view, jwt: deps.jwt, keyUsage, now });
  await app.register(ingressPlugin, { limiter: ingress, view: deps.view, defaults: deps.config.ingress, payloadBytes, payloadDefaults });
  await app.register(idempotencyPlugin, { store: idempotency });
  await app.register(healthRoutes, { readiness, migrationsApplied: deps.migrationsApplied ?? (() => migrationsApplied(deps.db)) });
  await app.register(tenantRoutes, { store: deps.store, view: deps.view, now, readModels });
  await app.register(ingestRoutes, { store: deps.store, eventIds, now, metrics, room, tracing: deps.tracing });
  await app.register(registryRoutes, { store: deps.store, view: deps.view, secretBox: deps.secretBox, config: deps.config, now });
  await app.register(registryReadRoutes, { readModels });
  await app.register(testSendRoutes, { view: deps.view, secretBox: deps.secretBox, store: deps.store, config: deps.config, now, testSends });
  await app.register(deliveryRoutes, { readModels });
  await app.register(auditRoutes, { readModels });
  await app.register(replayRoutes, { store: deps.store, reads: createReplayReads(deps.db), readModels, now, view: deps.view, quotas: deps.config.quotas });
  await app.register(parkedRoutes, { store: deps.store, readModels, now });
  await app.register(sourceRoutes, { store: deps.store, view: deps.view, secretBox: deps.secretBox, config: deps.config, now });
  await app.register(sourceReadRoutes, { readModels });
  await app.register(inboundRoutes, {
    store: deps.store,
    view: deps.view,
    secretBox: deps.secretBox,
    deliveries: inboundDeliveries,
    signatures: inboundSignatures,
    now,
    metrics,
    tracing: deps.tracing,
    ingress,
    ingressDefaults: deps.config.ingress ?? DEFAULT_INGRESS,
    payloadBytes,
    payloadDefaults,
    room,
  });
  await app.register(streamRoutes, { feed: deps.feed ?? openFeed(deps), heartbeatMs: deps.feedHeartbeatMs, limits: deps.config.feedLimits, view: deps.view });
  return app as unknown as FastifyInstance;
}

/** A default port over a NATS KV bucket; tests may hand in their own instead. */
function openKv<T>(
  { streams, topology }: ApiDeps,
  what: string,
  open: (nc: NonNullable<ApiDeps["streams"]>["nc"], topology: ApiDeps["topology"]) => Promise<T>,
): Promise<T> {
  if (!streams) throw new Error(`buildApp needs \`streams\` (or the port) for ${what}`);
  return open(streams.nc, topology);
}

function openFeed({ streams, topology }: ApiDeps): TenantFeed {
  if (!streams) throw new Error("buildApp needs `streams` (or a `feed` port) for the event feeds");
  return createTenantFeed({ js: streams.js, jsm: streams.jsm, topology });
}
