import { describe, expect, it } from "vitest";
import { createLagWatch, createReadiness, readinessStatus } from "./readiness.js";

describe("readiness status", () => {
  it("is unavailable when NATS, Postgres or the consumers fail, degraded when only the read models lag", () => {
    expect(readinessStatus({ nats: true, postgres: true })).toBe("ready");
    expect(readinessStatus({ nats: true, postgres: true, consumers: true, readModels: true })).toBe("ready");
    expect(readinessStatus({ nats: false, postgres: true })).toBe("unavailable");
    expect(readinessStatus({ nats: true, postgres: false, readModels: false })).toBe("unavailable");
    expect(readinessStatus({ nats: true, postgres: true, consumers: false })).toBe("unavailable");
    expect(readinessStatus({ nats: true, postgres: true, consumers: true, readModels: false })).toBe("degraded");
  });

  it("needs no Postgres in a process without a database (router, dispatcher or replayer alone)", () => {
    expect(readinessStatus({ nats: true, consumers: true })).toBe("ready");
    expect(readinessStatus({ nats: true, consumers: false })).toBe("unavailable");
    expect(readinessStatus({ nats: false, consumers: true })).toBe("unavailable");
  });
});

describe("lag watch", () => {
  it("keeps up while the lag is under the threshold and the checkpoint moves", () => {
    let now = 0;
    const keepsUp = createLagWatch({ maxLagEvents: 100, stallMs: 1_000, now: () => now });
    expect(keepsUp(50, 0)).toBe(true);
    expect(keepsUp(500, 0)).toBe(false);
    now = 5_000;
    expect(keepsUp(520, 480)).toBe(true);
    expect(keepsUp(480, 480)).toBe(true);
  });

  it("is behind when the checkpoint stops moving while events wait", () => {
    let now = 0;
    const keepsUp = createLagWatch({ maxLagEvents: 100, stallMs: 1_000, now: () => now });
    expect(keepsUp(10, 5)).toBe(true);
    now = 900;
    expect(keepsUp(10, 5)).toBe(true);
    now = 1_500;
    expect(keepsUp(10, 5)).toBe(false);
    now = 1_600;
    expect(keepsUp(12, 10)).toBe(true);
    // Caught up, the checkpoint may stay still for ever.
    now = 100_000;
    expect(keepsUp(10, 10)).toBe(true);
  });

  it("does not call a fresh event after a quiet hour a stall", () => {
    let now = 0;
    const keepsUp = createLagWatch({ maxLagEvents: 100, stallMs: 1_000, now: () => now });
    expect(keepsUp(10, 10)).toBe(true);
    now = 3_600_000;
    expect(keepsUp(10, 10)).toBe(true);
    now = 3_600_001;
    expect(keepsUp(11, 10)).toBe(true);
  });
});

describe("createReadiness", () => {
  const readModels = { ping: async () => {} };

  it("leaves the postgres check out without read models", async () => {
    const readiness = createReadiness({ nc: undefined, probes: { consumersBound: async () => true } });
    expect(await readiness()).toEqual({ nats: false, consumers: true });
  });

  it("checks the consumers and the read models when given probes", async () => {
    const readiness = createReadiness({
      nc: undefined,
      readModels,
      probes: { consumersBound: async () => true, readModelProgress: async () => ({ streamSeq: 50_000, checkpoint: 10 }) },
    });
    expect(await readiness()).toEqual({ nats: false, postgres: true, consumers: true, readModels: false });
  });

  it("reports a probe that throws as failing", async () => {
    const readiness = createReadiness({
      nc: undefined,
      readModels: {
        ping: async () => {
          throw new Error("down");
        },
      },
      probes: {
        consumersBound: async () => {
          throw new Error("consumer not found");
        },
        readModelProgress: async () => {
          throw new Error("down");
        },
      },
    });
    expect(await readiness()).toEqual({ nats: false, postgres: false, consumers: false, readModels: false });
  });
});

describe("createReadiness: the consumers check", () => {
  it("takes a probe answering false as failing, not only one that throws", async () => {
    const readiness = createReadiness({ nc: undefined, probes: { consumersBound: async () => false } });
    const checks = await readiness();
    expect(checks).toEqual({ nats: false, consumers: false });
    expect(readinessStatus({ ...checks, nats: true })).toBe("unavailable");
  });
});
