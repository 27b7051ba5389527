/** How often the clock ticks; a tick later than this plus {@link STALL_TOLERANCE_MS} is a stall. */
const TICK_MS = 50;
const STALL_TOLERANCE_MS = 50;

/**
 * A clock of the time this process ran: wall time less every stretch its event loop did not run
 * (frozen by SIGSTOP, a VM paused, a long pause, or busy), including a stall not yet over when
 * asked (the first callbacks after a freeze run before any timer). A wait measured on it is what
 * the other side took, not what the process lost: an attempt in flight across a freeze is neither
 * a hang nor a timeout.
 */
export function createProcessClock({ longStallMs = 3_000 }: { longStallMs?: number } = {}) {
  let stalledMs = 0;
  let longStalls = 0;
  let lastTickAt = Date.now();
  const unaccounted = (at: number) => Math.max(0, at - lastTickAt - TICK_MS - STALL_TOLERANCE_MS);
  const ticker = setInterval(() => {
    const at = Date.now();
    const stall = unaccounted(at);
    if (stall > longStallMs) longStalls++;
    stalledMs += stall;
    lastTickAt = at;
  }, TICK_MS);
  ticker.unref();
  return {
    /** Milliseconds on the process clock (comparable with each other only). */
    now: () => {
      const at = Date.now();
      return at - stalledMs - unaccounted(at);
    },
    /** How many times the event loop stood still for longer than `longStallMs` (3 s), one going on included. */
    longStalls: () => longStalls + (unaccounted(Date.now()) > longStallMs ? 1 : 0),
    stop: () => clearInterval(ticker),
  };
}

export type ProcessClock = ReturnType<typeof createProcessClock>;

/** The process's one clock, for whoever times waits on it (the outbound sender, the dispatcher's lanes). */
export const processClock = createProcessClock();
