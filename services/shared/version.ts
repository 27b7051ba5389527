import { readFileSync } from "node:fs";

/** The package version, read once from package.json (works from source and from dist/). */
function readVersion(): string {
  for (const path of ["../../package.json", "../../../package.json"]) {
    try {
      return (JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      // not at this depth; try the next
    }
  }
  return "0.0.0";
}

export const VERSION = readVersion();
