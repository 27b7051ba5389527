export interface BatcherOptions<T, B> {
  /** Most items in one batch. */
  maxSize: number;
  /** How long a partial batch waits for more items while nothing commits. */
  gatherMs: number;
  /** Turns cut items into a batch (e.g. decodes them); runs while the previous batch commits. */
  prepare: (items: T[]) => B;
  /** Commits one batch; batches commit one after another, in order. */
  commit: (batch: B) => Promise<void>;
  /** Called once, on the first failure (of `prepare` or `commit`). */
  onFailure?: (error: unknown) => void;
}

export interface Batcher<T> {
  /**
   * Adds an item; `idle` says none is waiting behind it. Returns a promise while two batches are
   * cut and uncommitted (one committing, one prepared): the caller waits before pushing again.
   */
  push(item: T, idle: boolean): Promise<void> | undefined;
  /** Commits what is left and waits for every commit; rejects with the first failure. */
  drain(): Promise<void>;
}

/**
 * Cuts a stream of items into batches and commits them one at a time. A batch is cut when full;
 * when the items stop (`idle`) while nothing commits; after `gatherMs` of a partial batch; or when
 * a commit ends with items gathered meanwhile (they already waited: a group commit). After a failure
 * nothing more commits, so no batch is ever committed after a later one.
 */
export function createBatcher<T, B>(options: BatcherOptions<T, B>): Batcher<T> {
  let open: T[] = [];
  let uncommitted = 0;
  let tail = Promise.resolve();
  let failure: { error: unknown } | null = null;
  let timer: NodeJS.Timeout | undefined;
  let room: (() => void) | null = null;

  const fail = (error: unknown) => {
    if (failure) return;
    failure = { error };
    open = [];
    clearTimeout(timer);
    options.onFailure?.(error);
  };

  const cut = () => {
    clearTimeout(timer);
    timer = undefined;
    if (failure || open.length === 0) return;
    const items = open;
    open = [];
    let batch: B;
    try {
      batch = options.prepare(items);
    } catch (error) {
      fail(error);
      return;
    }
    uncommitted += 1;
    tail = tail.then(async () => {
      try {
        if (!failure) await options.commit(batch);
      } catch (error) {
        fail(error);
      } finally {
        uncommitted -= 1;
        room?.();
        room = null;
      }
      if (uncommitted === 0 && open.length > 0) cut();
    });
  };

  return {
    push(item, idle) {
      if (failure) return undefined;
      open.push(item);
      if (open.length >= options.maxSize || (idle && uncommitted === 0)) cut();
      else if (uncommitted === 0) timer ??= setTimeout(cut, options.gatherMs);
      if (uncommitted < 2 || failure) return undefined;
      return new Promise<void>((resolve) => (room = resolve));
    },
    async drain() {
      if (uncommitted === 0) cut();
      while (uncommitted > 0) await tail;
      clearTimeout(timer);
      if (failure) throw failure.error;
    },
  };
}
