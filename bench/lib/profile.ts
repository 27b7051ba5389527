import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./env.js";

/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and aggregates self time by function
 * (name + file + line) and by file/package, hottest first.
 * Usage: tsx bench/lib/profile.ts bench/profiles/<file>.cpuprofile [top]
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  idleMs: number;
  functions: Array<{ name: string; where: string; selfMs: number; pct: number }>;
  files: Array<{ where: string; selfMs: number; pct: number }>;
}

const shorten = (url: string): string => {
  if (!url) return "(native)";
  const path = url.startsWith("file://") ? new URL(url).pathname : url;
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) return path.slice(nm + "node_modules/".length);
  return path.startsWith("/") ? relative(ROOT, path) : path;
};

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle += us;
      continue;
    }
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : "(native)";
    const key = `${functionName}|${where}`;
    const entry = fns.get(key) ?? { name: functionName || "(anonymous)", where, us: 0 };
    entry.us += us;
    fns.set(key, entry);
    const fileKey = url ? packageOf(shorten(url)) : functionName.startsWith("(") ? functionName : "(native)";
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const busy = total - idle || 1;
  return {
    file,
    totalMs: total / 1000,
    idleMs: idle / 1000,
    functions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, pct: (100 * f.us) / busy })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, us]) => ({ where, selfMs: us / 1000, pct: (100 * us) / busy })),
  };
}

/** `@scope/pkg` or `pkg` for node_modules paths, the file itself for ours and node internals. */
function packageOf(path: string): string {
  if (path.startsWith("node:") || path.startsWith("dist/") || path.startsWith("bench/")) return path;
  const parts = path.split("/");
  if (parts[0]?.startsWith("@")) return `${parts[0]}/${parts[1]}`;
  return parts[0] ?? path;
}

export function formatSummary(s: ProfileSummary, top = 20): string {
  const lines = [
    `${shorten(s.file)}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(100 * (1 - s.idleMs / (s.totalMs || 1))).toFixed(0)} % busy; self time (share of busy time):`,
  ];
  for (const f of s.functions.slice(0, top)) lines.push(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`);
  lines.push("  by file/package:");
  for (const f of s.files.slice(0, 12)) lines.push(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.where}`);
  return lines.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const top = Number(process.argv[3] ?? 25);
  console.log(formatSummary(summarizeProfile(process.argv[2]!, top), top));
}
