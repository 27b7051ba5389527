import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const DOMAIN = fileURLToPath(new URL("../domain/", import.meta.url));
const ROOT = resolve(DOMAIN, "..");
/** What domain code may import: itself, contracts/, zod (through contracts) and pure hashing. */
const ALLOWED_PACKAGES = new Set(["node:crypto", "zod", "ipaddr.js", "vitest", "standardwebhooks"]);
const TEST_ONLY = new Set(["vitest", "standardwebhooks"]);

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );

const importsOf = (file: string): string[] => [...readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)[^'"]*from\s+["']([^"']+)["']/gm)].map((m) => m[1]!);

describe("domain/ is pure", () => {
  it("imports only domain/, contracts/ and pure packages (IO-free), test helpers only in tests", () => {
    const offences: string[] = [];
    for (const file of sourceFiles(DOMAIN)) {
      const isTest = file.endsWith(".test.ts") || file.includes("/domain/testing/");
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith(".")) {
          const target = relative(ROOT, resolve(file, "..", specifier));
          if (!target.startsWith("domain/") && !target.startsWith("contracts/")) offences.push(`${relative(ROOT, file)} → ${specifier}`);
        } else if (!ALLOWED_PACKAGES.has(specifier) || (TEST_ONLY.has(specifier) && !isTest)) {
          offences.push(`${relative(ROOT, file)} → ${specifier}`);
        }
      }
    }
    expect(offences).toEqual([]);
  });
});
