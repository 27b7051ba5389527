import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { CONTRACT_VERSION } from "../../contracts/http/common.js";

/**
 * The OpenAPI document, generated from the routes' zod schemas, at `GET /docs/openapi.json`, and
 * the Swagger UI at `/docs`. Registered before the routes so it sees them all.
 */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Zen Webhooks",
        version: CONTRACT_VERSION,
        description: "Multi-tenant webhook platform. Errors are always {error: {code, message, requestId, details?}}.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "Operator token or tenant API key (zk_…)" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // The UI's own CSP (its inline script and style hashes) replaces the api's strict one on its
  // pages; without upgrade-insecure-requests, which would break it on a plain-http development port.
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    uiConfig: { url: "/docs/openapi.json" } as never,
    staticCSP: true,
    transformStaticCSP: (header: string) => header.replace(/\s*upgrade-insecure-requests;?/, ""),
  });
  app.get("/docs/openapi.json", { schema: { hide: true }, config: { scope: null } }, async () => app.swagger());
}
