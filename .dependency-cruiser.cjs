// Import boundaries (DESIGN.md "Layout"): which folder may import which. `npm run lint` runs it:
//   depcruise contracts domain streams projections services test
// Paths are relative to the repository root; npm packages resolve to `node_modules/<name>/...`,
// Node's built-ins to their bare name (`node:fs` → `fs`).

/** Test code and test helpers: never shipped, may import the helpers and devDependencies. */
const TEST_HELPERS = ["^test/", "^services/api/testing[.]ts$", "^projections/testing/", "^domain/testing/"];
const TEST_CODE = ["[.]test[.]ts$", ...TEST_HELPERS];
/** What is not shipped: tests, their helpers and the bench. */
const NOT_SHIPPED = [...TEST_CODE, "^bench/"];

/** What pure domain code may use besides domain/ and contracts/: schemas, IP parsing, hashing. */
const DOMAIN_PACKAGES = ["^node_modules/zod/", "^node_modules/ipaddr[.]js/", "^crypto$"];
/** ...and what its tests may use on top. */
const DOMAIN_TEST_PACKAGES = ["^node_modules/vitest/", "^node_modules/@vitest/", "^node_modules/standardwebhooks/"];

/** Every folder of services/ that is not a role: code any role may share. */
const SHARED_SERVICES = "shared|outbound";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "contracts-only-zod",
      comment: "contracts/ holds zod schemas: it imports zod and other contracts files, nothing else.",
      severity: "error",
      from: { path: "^contracts/" },
      to: { pathNot: ["^contracts/", "^node_modules/zod/"] },
    },
    {
      name: "domain-pure",
      comment:
        "domain/ is pure deciders: it imports only domain/, contracts/, zod, ipaddr.js and node:crypto. No IO: no fs, net, http, dns, child_process, timers, no nats, pg, slonik, pino, undici, fastify.",
      severity: "error",
      from: { path: "^domain/", pathNot: TEST_CODE },
      to: { pathNot: ["^domain/", "^contracts/", ...DOMAIN_PACKAGES] },
    },
    {
      name: "domain-tests-pure",
      comment: "domain/ tests and domain/testing/: what domain/ may import, plus vitest and standardwebhooks (cross-checks); still no IO.",
      severity: "error",
      from: { path: ["^domain/.+[.]test[.]ts$", "^domain/testing/"] },
      to: { pathNot: ["^domain/", "^contracts/", ...DOMAIN_PACKAGES, ...DOMAIN_TEST_PACKAGES, ...TEST_HELPERS] },
    },
    {
      name: "streams-layer",
      comment: "streams/ imports contracts/, domain/, streams/, npm packages and Node's built-ins (tests: the test helpers too).",
      severity: "error",
      from: { path: "^streams/" },
      to: { dependencyTypesNot: ["core"], pathNot: ["^streams/", "^domain/", "^contracts/", "^node_modules/", ...TEST_HELPERS] },
    },
    {
      name: "projections-layer",
      comment: "projections/ imports contracts/, domain/, streams/, projections/, npm packages and Node's built-ins (tests: the test helpers too); never services/.",
      severity: "error",
      from: { path: "^projections/" },
      to: { dependencyTypesNot: ["core"], pathNot: ["^projections/", "^streams/", "^domain/", "^contracts/", "^node_modules/", ...TEST_HELPERS] },
    },
    {
      name: "no-cross-role",
      comment: `A role's folder (services/<role>/: api, router, dispatcher, replayer, ops, projector...) imports no other role's; shared code lives in services/{${SHARED_SERVICES}}/. Only services/*.ts at the top (platform, main, probes) wire roles together. The api's test harness (services/api/testing.ts) is a test helper any test may use.`,
      severity: "error",
      from: { path: "^services/([^/]+)/", pathNot: `^services/(${SHARED_SERVICES})/` },
      to: { path: ["^services/[^/]+/", "^services/[^/]+[.]ts$"], pathNot: [`^services/($1|${SHARED_SERVICES})/`, "^services/api/testing[.]ts$"] },
    },
    {
      name: "shared-not-to-roles",
      comment: `services/{${SHARED_SERVICES}}/ is shared by the roles: it imports no role folder and not the top-level wiring (services/*.ts).`,
      severity: "error",
      from: { path: `^services/(${SHARED_SERVICES})/`, pathNot: TEST_CODE },
      to: { path: "^services/", pathNot: `^services/(${SHARED_SERVICES})/` },
    },
    {
      name: "no-test-helpers-in-shipped",
      comment: "Shipped code (everything but tests, their helpers and the bench) imports no test file, no test helper and nothing of bench/.",
      severity: "error",
      from: { pathNot: NOT_SHIPPED },
      to: { path: [...TEST_CODE, "^bench/"] },
    },
    {
      name: "no-dev-deps-in-shipped",
      comment: "Shipped code imports only dependencies: a devDependency (vitest, testcontainers, ...) is not installed in the image.",
      severity: "error",
      from: { pathNot: NOT_SHIPPED },
      to: { dependencyTypes: ["npm-dev"], dependencyTypesNot: ["type-only"] },
    },
    {
      name: "not-to-unresolvable",
      comment: "Every import resolves to a file or an installed package.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports count: a layer must not even know another's types.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["^dist/", "^node_modules/"] },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
