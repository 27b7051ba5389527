/** The HTTP contract (API.md) as zod schemas: validation, types and the OpenAPI document. */
export * from "./common.js";
export * from "./tenants.js";
export * from "./ingest.js";
export * from "./endpoints.js";
export * from "./deliveries.js";
export * from "./health.js";
export * from "./test-send.js";
export * from "./sources.js";
export * from "./streams.js";
export * from "./audit.js";
