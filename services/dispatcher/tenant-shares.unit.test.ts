import { describe, expect, it } from "vitest";
import { createTenantShares } from "./tenant-shares.js";

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("a dispatcher's per-tenant shares of attempts in flight", () => {
  it("holds a tenant to its share while another tenant's attempts start at once, and lets the next one in as one finishes", async () => {
    let heldBack = 0;
    const shares = createTenantShares(
      16,
      () => 2,
      () => heldBack++,
    );
    const started: string[] = [];
    const hanging: Array<() => void> = [];
    const attempt = (name: string) => () =>
      new Promise<void>((resolve) => {
        started.push(name);
        hanging.push(resolve);
      });
    for (let n = 1; n <= 5; n++) void shares.run("ten_noisy", attempt(`noisy${n}`));
    void shares.run("ten_quiet", attempt("quiet1"));
    await settle();
    expect(started).toEqual(["noisy1", "noisy2", "quiet1"]);
    expect(heldBack).toBe(3);

    hanging[0]!();
    await settle();
    await settle();
    expect(started).toEqual(["noisy1", "noisy2", "quiet1", "noisy3"]);
  });

  it("forgets a tenant whose line is empty, and passes results and failures through", async () => {
    const shares = createTenantShares(16, () => 1);
    await expect(shares.run("ten_a", async () => 42)).resolves.toBe(42);
    await expect(shares.run("ten_b", async () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(shares.tenants()).toBe(0);
  });

  it("reads each tenant's share on each attempt, so an operator's change applies to the next", async () => {
    const share = new Map([["ten_big", 1]]);
    const shares = createTenantShares(16, (tenantId) => share.get(tenantId) ?? 1);
    const started: string[] = [];
    const hang = (name: string) => () => new Promise<void>(() => void started.push(name));
    void shares.run("ten_big", hang("a"));
    void shares.run("ten_big", hang("b"));
    await settle();
    expect(started).toEqual(["a"]);
    share.set("ten_big", 3);
    void shares.run("ten_big", hang("c"));
    await settle();
    expect(started).toEqual(["a", "b", "c"]);
  });

  it("gives each tenant at most half of what the others leave, so tenants hanging together leave a newcomer a slot", async () => {
    const shares = createTenantShares(16, () => 16);
    const started = new Map<string, number>();
    const hang = (tenantId: string) => () => new Promise<void>(() => void started.set(tenantId, (started.get(tenantId) ?? 0) + 1));
    for (const tenantId of ["ten_a", "ten_b", "ten_c", "ten_d"]) {
      for (let n = 0; n < 16; n++) void shares.run(tenantId, hang(tenantId));
      await settle();
    }
    void shares.run("ten_quiet", hang("ten_quiet"));
    await settle();
    expect(Object.fromEntries(started)).toEqual({ ten_a: 8, ten_b: 4, ten_c: 2, ten_d: 1, ten_quiet: 1 });
  });
});
