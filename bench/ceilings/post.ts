import { randomBytes } from "node:crypto";
import { Pool } from "undici";
import { Webhook } from "standardwebhooks";
import { serve } from "../lib/rpc.js";
import { summarize } from "../lib/stats.js";

/**
 * ceiling.post: what one process can push to the loopback receiver: signed (Standard Webhooks)
 * 1 KiB POSTs over keep-alive connections with `inFlight` outstanding, like the dispatcher's.
 */
async function run({ origin, path, secret, durationS, inFlight = 64 }: { origin: string; path: string; secret: string; durationS: number; inFlight?: number }) {
  const pool = new Pool(origin, { connections: inFlight, pipelining: 1 });
  const signer = new Webhook(secret);
  const pad = "x".repeat(1024 - 80);
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let n = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const lane = async () => {
    while (performance.now() < deadline) {
      const id = `msg_${randomBytes(8).toString("hex")}${n++}`;
      const now = new Date();
      const body = JSON.stringify({ type: "ceiling.post", timestamp: now.toISOString(), data: { pad } });
      const headers = {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
        "webhook-signature": signer.sign(id, now, body),
      };
      const t0 = performance.now();
      try {
        const res = await pool.request({ path, method: "POST", headers, body });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
        else failed++;
      } catch {
        failed++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return { ok, failed, seconds, rate: ok / seconds, latency: summarize(latencies) };
}

serve({ run });
