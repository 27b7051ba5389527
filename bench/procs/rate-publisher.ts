import { Pool } from "undici";
import { serve } from "../lib/rpc.js";
import { summarize } from "../lib/stats.js";

/**
 * Open-loop load: POSTs at a constant arrival rate whatever the answers (as Outpost's k6 harness
 * does), each payload carrying `sentAt`, its send time on the wall clock, so the receiver can
 * measure ingest-to-receiver latency. At most `maxInFlight` requests are outstanding; a send
 * that would exceed it is counted as `skipped` (the platform fell behind the offered rate).
 */
export interface RateOptions {
  origin: string;
  path: string;
  headers: Record<string, string>;
  eventType: string;
  rate: number;
  durationS: number;
  payloadBytes?: number;
  maxInFlight?: number;
}

const wallNow = () => performance.timeOrigin + performance.now();

async function run(options: RateOptions) {
  const pool = new Pool(options.origin, { connections: 64, pipelining: 1 });
  const maxInFlight = options.maxInFlight ?? 512;
  const pad = "x".repeat(Math.max(0, (options.payloadBytes ?? 1024) - 120));
  const ids: string[] = [];
  const ingestLatencies: number[] = [];
  let inFlight = 0;
  let sent = 0;
  let skipped = 0;
  let failed = 0;
  let seq = 0;
  const all: Promise<void>[] = [];

  const fire = () => {
    if (inFlight >= maxInFlight) {
      skipped++;
      return;
    }
    inFlight++;
    sent++;
    const sentAt = wallNow();
    const body = JSON.stringify({ eventType: options.eventType, payload: { sentAt, seq: seq++, pad } });
    all.push(
      pool
        .request({ path: options.path, method: "POST", headers: options.headers, body })
        .then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode === 202) {
            ids.push(JSON.parse(text).messageId);
            ingestLatencies.push(wallNow() - sentAt);
          } else failed++;
        })
        .catch(() => {
          failed++;
        })
        .finally(() => {
          inFlight--;
        }),
    );
  };

  const startedAt = wallNow();
  const total = Math.round(options.rate * options.durationS);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((wallNow() - startedAt) / 1000) * options.rate));
      while (sent + skipped < due) fire();
      if (sent + skipped >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const endedAt = wallNow();
  await Promise.race([Promise.allSettled(all), new Promise((r) => setTimeout(r, 30_000))]);
  await pool.close().catch(() => undefined);
  return {
    startedAt,
    endedAt,
    sent,
    skipped,
    failed,
    accepted: ids.length,
    ids,
    offeredRate: options.rate,
    achievedRate: ids.length / ((endedAt - startedAt) / 1000),
    ingest: summarize(ingestLatencies),
  };
}

serve({ run });
