import { decodeTime } from "ulidx";

export interface StoreReadGuardOptions {
  now?: () => number;
  /** The view lags by moments: an id older than this that it has not seen is not looked for (default 15 min). */
  freshForMs?: number;
  /** How long an id found nowhere is answered from memory (default 30 s). */
  negativeTtlMs?: number;
  /** Store look-ups a second at most; past it an unseen id counts as unknown (default 20). */
  storeReadsPerSecond?: number;
}

const MAX_REMEMBERED = 10_000;

/**
 * Bounds the event-store reads that ids the registry view has not seen can cause, where anyone may
 * send such ids (an unknown `zk_` key, an inbound path naming no source): only an id whose ULID is
 * recent (created a moment ago through another process) is looked for, ids found nowhere are
 * remembered for a while, and at most `storeReadsPerSecond` look-ups run a second.
 */
export function createStoreReadGuard(options: StoreReadGuardOptions = {}) {
  const now = options.now ?? Date.now;
  const { freshForMs = 15 * 60_000, negativeTtlMs = 30_000, storeReadsPerSecond = 20 } = options;
  const unknown = new Map<string, number>();
  let window = { second: 0, reads: 0 };

  const rememberedUnknown = (key: string): boolean => {
    const until = unknown.get(key);
    if (until === undefined) return false;
    if (until > now()) return true;
    unknown.delete(key);
    return false;
  };
  const withinBudget = (): boolean => {
    const second = Math.floor(now() / 1000);
    if (window.second !== second) window = { second, reads: 0 };
    window.reads += 1;
    return window.reads <= storeReadsPerSecond;
  };
  const isFresh = (ulid: string): boolean => {
    try {
      const age = now() - decodeTime(ulid);
      return age >= -60_000 && age <= freshForMs;
    } catch {
      return false;
    }
  };

  return {
    /** Whether to look in the store for the id whose ULID part is `ulid` (`key` names it among misses). */
    mayRead(ulid: string, key: string): boolean {
      return isFresh(ulid) && !rememberedUnknown(key) && withinBudget();
    },
    /** The store did not have it either. */
    rememberMiss(key: string): void {
      unknown.set(key, now() + negativeTtlMs);
      if (unknown.size > MAX_REMEMBERED) unknown.delete(unknown.keys().next().value as string);
    },
  };
}

export type StoreReadGuard = ReturnType<typeof createStoreReadGuard>;
