import { monitorEventLoopDelay } from "node:perf_hooks";

/** How often the event loop's delay is read (and its histogram started afresh). */
const WINDOW_MS = 500;

/**
 * This process's event-loop delay over the last half second (its mean, in ms). When the process
 * itself is saturated every response waits in its queue this long, so an attempt's latency minus
 * this is what the endpoint took: a busy dispatcher never mistakes a fast endpoint for a slow one.
 */
export function createLoopLag() {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let lagMs = 0;
  const timer = setInterval(() => {
    // The mean includes the sampling resolution itself; nanoseconds to milliseconds.
    // An empty window (no sample yet) reads NaN: no lag.
    lagMs = Number.isFinite(histogram.mean) ? Math.max(0, histogram.mean / 1e6 - 10) : 0;
    histogram.reset();
  }, WINDOW_MS);
  timer.unref();
  return {
    lagMs: () => lagMs,
    stop: () => {
      clearInterval(timer);
      histogram.disable();
    },
  };
}

export type LoopLag = ReturnType<typeof createLoopLag>;
