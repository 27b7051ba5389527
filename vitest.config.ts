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
          globalSetup: ["test/support/global-setup.ts"],
          include: ["test/faults/**/*.fault.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The 3-node cluster scenarios: not in `npm test` (see README "Reliability": nats-server
        // 2.9.10's failover is not yet dependable enough to gate on).
        test: {
          name: "cluster",
          globalSetup: ["test/support/global-setup.ts"],
          include: ["test/faults/**/*.cluster.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
