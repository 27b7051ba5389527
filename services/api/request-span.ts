import type { Attributes } from "@opentelemetry/api";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { CommandContext } from "../../streams/event-store.js";
import { traceFields } from "../shared/logger.js";
import { headerValue, type TraceSpan, type Tracing } from "../shared/tracing.js";

/** What a route's handler does with its request's span. */
export interface RequestSpans {
  /**
   * Names the request's ids on its span and puts the span's `traceparent` into the command
   * context, so the events the request appends (and the router's span) continue its trace.
   * Nothing when tracing is off.
   */
  enter(request: FastifyRequest, context: CommandContext, attributes: Attributes): void;
}

/**
 * With tracing on, a server span per request of the routes of `app`'s scope (continuing the
 * client's `traceparent`, if it sent one), from the scope's onRequest to the response, named
 * `METHOD /route/pattern`; every line the request logs (its `request completed` line included)
 * carries the span's `traceId`. A request refused by an app-wide onRequest hook (auth, ingress
 * limits) ends before the scope's and has no span. Off, the hooks are not even registered.
 */
export function requestSpans(app: Pick<FastifyInstance, "addHook">, tracing: Tracing): RequestSpans {
  if (!tracing.enabled) return { enter() {} };
  const spans = new WeakMap<FastifyRequest, TraceSpan>();
  app.addHook("onRequest", async (request) => {
    const route = request.routeOptions.url ?? "unmatched";
    const attributes = { "http.request.method": request.method, "http.route": route };
    const span = tracing.startSpan(`${request.method} ${route}`, { kind: "server", parent: headerValue(request.headers.traceparent), attributes });
    spans.set(request, span);
    if (span.traceparent) request.log = request.log.child(traceFields(span));
  });
  app.addHook("onResponse", async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttributes({ "http.response.status_code": reply.statusCode });
    if (reply.statusCode >= 500) span.fail(`HTTP ${reply.statusCode}`);
    span.end();
  });
  return {
    enter(request, context, attributes) {
      const span = spans.get(request);
      if (!span) return;
      span.setAttributes(attributes);
      if (span.traceparent) context.traceparent = span.traceparent;
    },
  };
}
