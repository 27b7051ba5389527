import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const TSC = createRequire(import.meta.url).resolve("typescript/bin/tsc");

/** What `npm run build` must never compile into dist/: tests and their helpers (tsc follows imports, whatever `exclude` says). */
const TEST_ONLY = [/\.test\.ts$/, /^test\//, /^services\/api\/testing\.ts$/, /^projections\/testing\//, /^domain\/testing\//, /^bench\//];

describe("npm run build (tsconfig.build.json)", () => {
  it("compiles the shipped code and no test file or test helper", () => {
    const listed = execFileSync(process.execPath, [TSC, "-p", "tsconfig.build.json", "--listFilesOnly"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    const ours = listed
      .split("\n")
      .filter(Boolean)
      .map((file) => relative(ROOT, file))
      .filter((file) => !file.startsWith("node_modules/") && !file.startsWith(".."));
    expect(ours).toContain("services/main.ts");
    expect(ours.filter((file) => TEST_ONLY.some((pattern) => pattern.test(file)))).toEqual([]);
  }, 120_000);
});
