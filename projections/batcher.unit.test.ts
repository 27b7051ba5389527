import { describe, expect, it } from "vitest";
import { createBatcher } from "./batcher.js";

/** A batcher over numbers whose commits finish when the test says so. */
function setup(maxSize = 3, gatherMs = 20) {
  const log: string[] = [];
  const pending: Array<{ batch: number[]; done: () => void; fail: (e: Error) => void }> = [];
  const failures: unknown[] = [];
  const batcher = createBatcher<number, number[]>({
    maxSize,
    gatherMs,
    prepare: (items) => {
      log.push(`prepare ${items.join(",")}`);
      return items;
    },
    commit: (batch) =>
      new Promise<void>((resolve, reject) => {
        log.push(`commit ${batch.join(",")}`);
        pending.push({ batch, done: () => (log.push(`done ${batch.join(",")}`), resolve()), fail: reject });
      }),
    onFailure: (e) => failures.push(e),
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { batcher, log, pending, failures, settle };
}

describe("batcher", () => {
  it("cuts full batches, prepares the next while one commits, and holds the producer when two are uncommitted", async () => {
    const { batcher, log, pending, settle } = setup(2);
    expect(batcher.push(1, false)).toBeUndefined();
    expect(batcher.push(2, false)).toBeUndefined();
    await settle();
    expect(log).toEqual(["prepare 1,2", "commit 1,2"]);
    batcher.push(3, false);
    const wait = batcher.push(4, false);
    // Decoded while 1,2 commits, not committed before it ends.
    expect(log).toEqual(["prepare 1,2", "commit 1,2", "prepare 3,4"]);
    expect(wait).toBeInstanceOf(Promise);
    let released = false;
    void wait!.then(() => (released = true));
    await settle();
    expect(released).toBe(false);
    pending[0]!.done();
    await settle();
    expect(released).toBe(true);
    expect(log.slice(3)).toEqual(["done 1,2", "commit 3,4"]);
    pending[1]!.done();
    await batcher.drain();
  });

  it("commits a partial batch at once when the items stop and nothing commits, else when the commit ends", async () => {
    const { batcher, log, pending, settle } = setup(10);
    batcher.push(1, true);
    await settle();
    expect(log).toEqual(["prepare 1", "commit 1"]);
    batcher.push(2, false);
    batcher.push(3, true);
    await settle();
    expect(log).toHaveLength(2); // gathered while 1 commits
    pending[0]!.done();
    await settle();
    expect(log.slice(2)).toEqual(["done 1", "prepare 2,3", "commit 2,3"]);
    pending[1]!.done();
    await batcher.drain();
  });

  it("cuts a partial batch after gatherMs, and drain commits what is left", async () => {
    const { batcher, log, pending } = setup(10, 15);
    batcher.push(1, false);
    await new Promise((r) => setTimeout(r, 40));
    expect(log).toEqual(["prepare 1", "commit 1"]);
    pending[0]!.done();
    await new Promise((r) => setTimeout(r, 0));
    batcher.push(2, false);
    const drained = batcher.drain();
    await new Promise((r) => setTimeout(r, 0));
    pending[1]!.done();
    await drained;
    expect(log).toEqual(["prepare 1", "commit 1", "done 1", "prepare 2", "commit 2", "done 2"]);
  });

  it("commits nothing after a failure, releases the producer, and drain rejects with it", async () => {
    const { batcher, log, pending, failures, settle } = setup(1);
    batcher.push(1, false);
    const wait = batcher.push(2, false);
    await settle();
    pending[0]!.fail(new Error("boom"));
    await wait;
    expect(batcher.push(3, false)).toBeUndefined();
    await expect(batcher.drain()).rejects.toThrow("boom");
    expect(log).toEqual(["prepare 1", "prepare 2", "commit 1"]); // 2 never commits
    expect(failures).toHaveLength(1);
  });
});
