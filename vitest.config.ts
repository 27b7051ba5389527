import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["**/*.unit.test.ts"], exclude: ["node_modules/**", "dist/**"] } },
      {
        test: {
          name: "int",
          globalSetup: ["test/support/global-setup.ts"],
          include: ["**/*.int.test.ts"],
          exclude: ["node_modules/**", "dist/**"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "e2e",
          globalSetup: ["test/support/global-setup.ts"],
          include: ["**/*.e2e.test.ts"],
          exclude: ["node_modules/**", "dist/**"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "faults",
          globalSetup: ["test/support/global-setup.ts", "test/faults/suite.ts"],
          include: ["test/faults/**/*.fault.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // Fault scenarios not in `npm test` (README "Reliability"): the 3-node cluster, where nats-server
        // 2.9.10's failover takes 5–15 s.
        test: {
          name: "faults-extended",
          globalSetup: ["test/support/global-setup.ts", "test/faults/suite.ts"],
          include: ["test/faults/**/*.extended.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
