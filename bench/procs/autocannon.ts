import autocannon from "autocannon";
import { serve } from "../lib/rpc.js";

/**
 * Closed-loop load: autocannon in its own process (so its CPU is not the measured process's).
 * With `collectIds`, the `messageId` of every 202 is kept, so the caller can check that each
 * accepted message arrived.
 */
export interface LoadOptions {
  url: string;
  connections: number;
  durationS?: number;
  amount?: number;
  headers: Record<string, string>;
  body: string;
  collectIds?: boolean;
  timeoutS?: number;
}

export interface LoadResult {
  startedAt: number;
  endedAt: number;
  durationS: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  latency: { p50: number; p90: number; p99: number; mean: number; max: number };
  ids?: string[];
}

const ID = /"messageId":"([^"]+)"/;

async function run(options: LoadOptions): Promise<LoadResult> {
  const ids: string[] = [];
  const startedAt = performance.timeOrigin + performance.now();
  const result = await autocannon({
    url: options.url,
    method: "POST",
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    timeout: options.timeoutS ?? 30,
    headers: options.headers,
    body: options.body,
    requests: [
      {
        method: "POST",
        headers: options.headers,
        body: options.body,
        ...(options.collectIds
          ? {
              onResponse: (status: number, body: string) => {
                if (status === 202) {
                  const m = ID.exec(body);
                  if (m) ids.push(m[1]!);
                }
              },
            }
          : {}),
      },
    ],
  });
  const endedAt = performance.timeOrigin + performance.now();
  const durationS = (endedAt - startedAt) / 1000;
  const ok = result["2xx"] as number;
  return {
    startedAt,
    endedAt,
    durationS,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: ok / durationS,
    latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, mean: result.latency.average, max: result.latency.max },
    ...(options.collectIds ? { ids } : {}),
  };
}

serve({ run });
