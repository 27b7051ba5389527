import { describe, expect, it } from "vitest";
import { createLocalBuckets } from "./shared-buckets.js";

const ONE_A_MINUTE = { capacity: 1, refillPerSecond: 1 / 60 };

describe("local buckets", () => {
  it("given a key whose bucket is spent, when it takes again, then it is refused until the refill", async () => {
    const buckets = createLocalBuckets();
    expect((await buckets.take("a", ONE_A_MINUTE, 0)).allowed).toBe(true);
    expect((await buckets.take("a", ONE_A_MINUTE, 1_000)).allowed).toBe(false);
    expect((await buckets.take("a", ONE_A_MINUTE, 61_000)).allowed).toBe(true);
  });

  it("given a bound on keys, when more keys take, then the least recently used is forgotten and starts full", async () => {
    const buckets = createLocalBuckets(2);
    await buckets.take("a", ONE_A_MINUTE, 0);
    await buckets.take("b", ONE_A_MINUTE, 0);
    // "a" is spent and kept while only two keys are in use.
    expect((await buckets.take("a", ONE_A_MINUTE, 1)).allowed).toBe(false);
    await buckets.take("c", ONE_A_MINUTE, 2);
    // "b" was the least recently used (a refused take counts as use): forgotten, it starts full; "c" stays spent.
    expect((await buckets.take("b", ONE_A_MINUTE, 3)).allowed).toBe(true);
    expect((await buckets.take("c", ONE_A_MINUTE, 4)).allowed).toBe(false);
  });
});
