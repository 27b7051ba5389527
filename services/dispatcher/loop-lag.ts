import { monitorEventLoopDelay } from "node:perf_hooks";

/** How often the event loop's delay is read (and its histogram started afresh). */
const WINDOW_MS = 500;
/** How often the process clock ticks; a tick later than this plus {@link STALL_TOLERANCE_MS} is a stall. */
const TICK_MS = 50;
const STALL_TOLERANCE_MS = 50;

/**
 * This process's event-loop delay over the last half second (its mean, in ms), and a clock of the
 * time it ran. When the process itself is saturated every response waits in its queue this long,
 * so an attempt's latency minus this is what the endpoint took: a busy dispatcher never mistakes a
 * fast endpoint for a slow one, nor a frozen one (SIGSTOP, a VM paused) every endpoint for a hang.
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
  // The process clock: wall time less every stretch the event loop did not run (frozen, paused,
  // or busy), so a wait measured on it is what the endpoint took, not what the process lost.
  let stalledMs = 0;
  let lastTickAt = Date.now();
  const unaccounted = (at: number) => Math.max(0, at - lastTickAt - TICK_MS - STALL_TOLERANCE_MS);
  const ticker = setInterval(() => {
    const at = Date.now();
    stalledMs += unaccounted(at);
    lastTickAt = at;
  }, TICK_MS);
  ticker.unref();
  return {
    lagMs: () => lagMs,
    /**
     * Milliseconds on the process clock: it stands still while the event loop does not run,
     * including a stall not yet over when asked (the first messages handled after a freeze).
     */
    processNow: () => {
      const at = Date.now();
      return at - stalledMs - unaccounted(at);
    },
    stop: () => {
      clearInterval(timer);
      clearInterval(ticker);
      histogram.disable();
    },
  };
}

export type LoopLag = ReturnType<typeof createLoopLag>;
