import { once } from "node:events";
import { ownLimit } from "../../../domain/tenant/tenant.js";
import { Readable } from "node:stream";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ID_PREFIX, type AggregateType } from "../../../contracts/common.js";
import { StreamEventLine, StreamEventsQuery } from "../../../contracts/http/streams.js";
import type { FeedEvent, TenantFeed } from "../../../streams/tenant-feed.js";
import { tenantOf } from "../auth.js";
import type { RegistryPort } from "../deps.js";
import * as E from "../errors.js";
import { errorResponses, TENANT_ERRORS } from "./shared.js";

/** At most this long without a byte on an open event feed, so proxies keep it (API.md: ≤ 15 s). */
export const DEFAULT_HEARTBEAT_MS = 15_000;

const aggregateOf = (id: string) => {
  const type = (Object.keys(ID_PREFIX) as AggregateType[]).find((kind) => id.startsWith(ID_PREFIX[kind]));
  return type && { type, id };
};

const ndjsonLine = (event: FeedEvent) => `{"seq":${event.seq},"event":${event.json}}\n`;
const sseMessage = (event: FeedEvent) => `id: ${event.seq}\nevent: ${event.type}\ndata: ${event.json}\n\n`;

/** A `Last-Event-ID` is the stream sequence of the last event received; anything else is a 400. */
function lastEventId(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  if (!/^\d{1,15}$/.test(text ?? ""))
    throw E.invalidRequest("Last-Event-ID must be the id of an event received", [{ path: "headers.last-event-id", message: "a stream sequence" }]);
  return Number(text);
}

/**
 * The tenant's immutable events, read from the log itself: a page as NDJSON for auditors, and a
 * live Server-Sent Events feed. Both read only the tenant's own subjects.
 */
/** Live-feed connections at once, per tenant and per api process (`ZEN_FEED_MAX_PER_TENANT`, `ZEN_FEED_MAX_PER_PROCESS`). */
export const DEFAULT_FEED_LIMITS = { perTenant: 20, perProcess: 1_000 };
/** What a refused feed connection is told to wait before it tries again. */
const FEED_RETRY_AFTER_SECONDS = 5;

export const streamRoutes: FastifyPluginAsyncZod<{
  feed: TenantFeed;
  heartbeatMs?: number;
  limits?: { perTenant: number; perProcess: number };
  /** Where a tenant's own `maxLiveFeeds` (set by the operator) is read; without it, `limits.perTenant` for all. */
  view?: Pick<RegistryPort, "tenant">;
}> = async (app, { feed, heartbeatMs = DEFAULT_HEARTBEAT_MS, limits = DEFAULT_FEED_LIMITS, view }) => {
  const perTenantOf = (tenantId: string): number => {
    return ownLimit(view?.tenant(tenantId), "maxLiveFeeds") ?? limits.perTenant;
  };
  // Each live connection holds a server-side consumer: bounded per tenant (no tenant takes every
  // one) and per process.
  const open = new Map<string, number>();
  let openInProcess = 0;
  app.get(
    "/v1/streams/events",
    {
      config: { scope: "audit:read", tenantScoped: true },
      schema: {
        tags: ["audit"],
        summary: "The tenant's immutable events as NDJSON, in stream order",
        description:
          "Each line is `{seq, event}` with the envelope exactly as stored, so its hash chain can be checked. Page on with `afterSeq` = the last line's `seq`; a page with fewer than `limit` lines is the log's end.",
        querystring: StreamEventsQuery,
        response: { 200: StreamEventLine.describe("application/x-ndjson: one such object per line"), ...errorResponses(...TENANT_ERRORS) },
      },
    },
    async (request, reply) => {
      const { afterSeq, since, until, aggregate, limit } = request.query;
      const events = feed.read(tenantOf(request), {
        afterSeq,
        limit,
        since: since ? new Date(since) : undefined,
        until: until ? new Date(until) : undefined,
        aggregate: aggregate ? aggregateOf(aggregate) : undefined,
      });
      const lines = async function* () {
        for await (const event of events) yield ndjsonLine(event);
      };
      // Streamed as it is read (fastify sends a stream unserialised); the schema documents one line.
      return reply.type("application/x-ndjson").send(Readable.from(lines()) as never);
    },
  );

  app.get(
    "/v1/webhooks/events",
    {
      config: { scope: "deliveries:read", tenantScoped: true },
      schema: {
        tags: ["deliveries"],
        summary: "Server-Sent Events of the tenant's events as they are stored",
        description:
          "`id:` is the stream sequence, `event:` the event type, `data:` the envelope. `Last-Event-ID` resumes after that event; a comment line at least every 15 s keeps the connection open.",
        response: errorResponses(...TENANT_ERRORS, 429),
      },
    },
    async (request, reply) => {
      const tenantId = tenantOf(request);
      const afterSeq = lastEventId(request.headers["last-event-id"]);
      const ofTenant = open.get(tenantId) ?? 0;
      const perTenant = perTenantOf(tenantId);
      if (ofTenant >= perTenant || openInProcess >= limits.perProcess) {
        const which = ofTenant >= perTenant ? `${perTenant} per tenant` : `${limits.perProcess} per api process`;
        throw E.quotaRateLimited(
          "live_feeds",
          `live event feeds are limited to ${which}; close one first`,
          ofTenant >= perTenant ? perTenant : limits.perProcess,
          FEED_RETRY_AFTER_SECONDS,
        );
      }
      open.set(tenantId, ofTenant + 1);
      openInProcess++;
      reply.hijack();
      const out = reply.raw;
      // Hijacked, so the headers the hooks set (request id, contract version, security headers) are sent here.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) out.setHeader(name, value);
      out.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      out.write(": connected\n\n");
      const closed = new AbortController();
      out.on("close", () => closed.abort());
      // A client that left while the request was authorised is gone before the listener came.
      if (out.destroyed || request.raw.socket?.destroyed) closed.abort();
      // A client reading slower than its events come is not buffered for: the feed waits for it.
      const heartbeat = setInterval(() => out.writableNeedDrain || out.write(": heartbeat\n\n"), heartbeatMs);
      try {
        for await (const event of feed.follow(tenantId, afterSeq, closed.signal)) {
          if (!out.write(sseMessage(event))) await once(out, "drain", { signal: closed.signal }).catch(() => undefined);
        }
      } catch (error) {
        request.log.warn({ err: error, tenantId }, "event feed ended");
      } finally {
        clearInterval(heartbeat);
        out.end();
        const left = (open.get(tenantId) ?? 1) - 1;
        if (left > 0) open.set(tenantId, left);
        else open.delete(tenantId);
        openInProcess--;
      }
    },
  );
};
