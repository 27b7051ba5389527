import { describe, expect, it } from "vitest";
import type { Verdict } from "../delivery/classify.js";
import {
  circuitOf,
  DEFAULT_BREAKER_CONFIG,
  initialBreaker,
  stepBreaker,
  type Admission,
  type BreakerConfig,
  type BreakerInput,
  type BreakerState,
  type CircuitEvent,
} from "./breaker.js";

const T0 = Date.parse("2025-01-01T00:00:00.000Z");
/** The time `s` seconds after T0. */
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

const result = (verdict: Verdict, s: number, probe = false): BreakerInput => ({
  type: "RecordResult",
  verdict,
  reason: verdict === "retry" ? "HTTP 500 from receiver" : verdict === "dead" ? "HTTP 400 from receiver" : "HTTP 200 from receiver",
  probe,
  now: at(s),
});
const fail = (s: number, probe = false) => result("retry", s, probe);
const succeed = (s: number, probe = false) => result("success", s, probe);
const admit = (s: number): BreakerInput => ({ type: "Admit", now: at(s) });
const failures = (n: number, from = 0) => Array.from({ length: n }, (_, i) => fail(from + i));

/** given(inputs).when(input).then(events): the breaker's spec, in the deciders' shape. */
const given = (inputs: BreakerInput[], config: BreakerConfig = DEFAULT_BREAKER_CONFIG) => ({
  when: (input: BreakerInput) => {
    const before = inputs.reduce<BreakerState>((state, i) => stepBreaker(state, i, config).state, initialBreaker());
    const step = stepBreaker(before, input, config);
    return {
      then: (events: CircuitEvent[]) => {
        expect(step.transitions.map((t) => t.event)).toEqual(events);
        return step;
      },
      admits: (admission: Admission) => {
        expect(step.admission).toEqual(admission);
        return step;
      },
      step,
    };
  },
});

const opened = (consecutiveFailures: number, openedAtS: number, failingSinceS: number, reason = "HTTP 500 from receiver"): CircuitEvent => ({
  type: "endpoint.circuit_opened",
  data: { consecutiveFailures, reason, halfOpenAt: at(openedAtS + 60), failingSince: at(failingSinceS) },
});
const halfOpened: CircuitEvent = { type: "endpoint.circuit_half_opened", data: {} };
const closed: CircuitEvent = { type: "endpoint.circuit_closed", data: {} };

describe("breaker: closed", () => {
  it("lets attempts through", () => {
    given([]).when(admit(0)).admits({ allowed: true, probe: false });
  });

  it("opens on the fifth consecutive transient failure", () => {
    given(failures(3)).when(fail(3)).then([]);
    const step = given(failures(4))
      .when(fail(4))
      .then([opened(5, 4, 0)]);
    expect(step.transitions[0]!.causeKey).toBe(`opened:${at(64)}`);
  });

  it("counts only an unbroken run: a success resets the count and failingSince", () => {
    given([...failures(4), succeed(4)])
      .when(fail(5))
      .then([]);
    given([...failures(4), succeed(4), ...failures(4, 5)])
      .when(fail(9))
      .then([opened(5, 9, 5)]);
    expect(given([...failures(2), succeed(2)]).when(admit(3)).step.state).toEqual(initialBreaker());
  });

  it("does not count hopeless answers (4xx, redirects), nor let them break the run", () => {
    given([...failures(4), result("dead", 4), result("dead", 5)])
      .when(fail(6))
      .then([opened(5, 6, 0)]);
    given([result("dead", 0), result("dead", 1), result("dead", 2), result("dead", 3)])
      .when(result("dead", 4))
      .then([]);
  });

  it("takes thresholds as parameters", () => {
    const config = { ...DEFAULT_BREAKER_CONFIG, failureThreshold: 2, halfOpenAfterMs: 1_000 };
    given([fail(0)], config)
      .when(fail(1))
      .then([
        {
          type: "endpoint.circuit_opened",
          data: { consecutiveFailures: 2, reason: "HTTP 500 from receiver", halfOpenAt: at(2), failingSince: at(0) },
        },
      ]);
  });
});

describe("breaker: open", () => {
  const open = failures(5); // opened at 4 s, half-open from 64 s

  it("refuses attempts until half-open time, saying how long to wait", () => {
    given(open).when(admit(10)).admits({ allowed: false, retryInMs: 54_000 });
    given(open).when(admit(10)).then([]);
  });

  it("ignores results of attempts that started before it opened", () => {
    const step = given(open).when(succeed(5)).then([]);
    expect(step.state.state).toBe("open");
    expect(given(open).when(fail(5)).then([]).state).toMatchObject({ state: "open", consecutiveFailures: 5 });
  });

  it("half-opens when due, and the attempt that found it so is the first probe", () => {
    const step = given(open).when(admit(64)).then([halfOpened]);
    expect(step.admission).toEqual({ allowed: true, probe: true });
    expect(step.transitions[0]!.causeKey).toBe(`half_opened:${at(64)}`);
    expect(step.state).toMatchObject({ state: "half_open", probesInFlight: 1, failingSince: at(0) });
  });
});

describe("breaker: half-open", () => {
  const halfOpen = [...failures(5), admit(64)];

  it("lets up to three probes go at once; the rest wait about a second", () => {
    given([...halfOpen, admit(64)])
      .when(admit(64))
      .admits({ allowed: true, probe: true });
    given([...halfOpen, admit(64), admit(64)])
      .when(admit(64))
      .admits({ allowed: false, retryInMs: 1_000 });
  });

  it("given three probes out to an endpoint with a 15 s timeout, when more attempts come, then they wait for the probes' answers (at most 2 s), not a second", () => {
    const probeTimeout = (s: number): BreakerInput => ({ type: "Admit", now: at(s), probeTimeoutMs: 15_000 });
    const probing = [...failures(5), probeTimeout(64), probeTimeout(64), probeTimeout(65)];
    given(probing).when(probeTimeout(66)).admits({ allowed: false, retryInMs: 2_000 });
    given(probing).when(probeTimeout(78)).admits({ allowed: false, retryInMs: 1_000 });
    // Past the probes' timeout (a hang not recorded yet), back at the usual second.
    given(probing).when(probeTimeout(80)).admits({ allowed: false, retryInMs: 1_000 });
  });

  it("given every probe put back unsent, when an attempt comes, then it is the first probe again, timed from now", () => {
    const probeTimeout = (s: number): BreakerInput => ({ type: "Admit", now: at(s), probeTimeoutMs: 15_000 });
    const released = [...failures(5), probeTimeout(64), { type: "ReleaseProbe" } as BreakerInput, probeTimeout(70), probeTimeout(70), probeTimeout(70)];
    given(released).when(probeTimeout(83)).admits({ allowed: false, retryInMs: 2_000 });
    given(released).when(probeTimeout(84)).admits({ allowed: false, retryInMs: 1_000 });
  });

  it("closes on a probe's success", () => {
    const step = given(halfOpen).when(succeed(65, true)).then([closed]);
    expect(step.transitions[0]!.causeKey).toBe(`closed:${at(0)}`);
    expect(step.state).toEqual(initialBreaker());
    expect(circuitOf(step.state)).toEqual({ state: "closed" });
  });

  it("re-opens on a probe's failure for another period, keeping failingSince", () => {
    given(halfOpen)
      .when(fail(65, true))
      .then([opened(6, 65, 0, "probe failed: HTTP 500 from receiver")]);
  });

  it("cycles open → half-open → open with the same failingSince until a probe succeeds", () => {
    const cycled = [...halfOpen, fail(65, true), admit(125)];
    given(cycled)
      .when(fail(126, true))
      .then([opened(7, 126, 0, "probe failed: HTTP 500 from receiver")]);
    given([...cycled, fail(126, true), admit(186)])
      .when(succeed(187, true))
      .then([closed]);
  });

  it("frees a probe slot on a hopeless answer or a probe put back", () => {
    const full = [...halfOpen, admit(64), admit(64)];
    given([...full, result("dead", 65, true)])
      .when(admit(65))
      .admits({ allowed: true, probe: true });
    given([...full, { type: "ReleaseProbe" }])
      .when(admit(65))
      .admits({ allowed: true, probe: true });
  });

  it("ignores results of attempts that were not probes", () => {
    given(halfOpen).when(succeed(65)).then([]);
    given(halfOpen).when(fail(65)).then([]);
  });
});

describe("breaker: adopting the recorded circuit", () => {
  const recordedOpen = { state: "open" as const, halfOpenAt: at(60), failingSince: at(0), consecutiveFailures: 5 };

  it("opens when another process opened the circuit", () => {
    const step = given([{ type: "Adopt", circuit: recordedOpen }])
      .when(admit(30))
      .admits({ allowed: false, retryInMs: 30_000 });
    expect(circuitOf(step.state)).toEqual(recordedOpen);
  });

  it("half-opens with its own probe slots when another process half-opened", () => {
    given([{ type: "Adopt", circuit: { ...recordedOpen, state: "half_open" } }])
      .when(admit(61))
      .admits({ allowed: true, probe: true });
  });

  it("closes when the circuit was closed elsewhere (or the endpoint re-enabled)", () => {
    given([...failures(5), { type: "Adopt", circuit: { state: "closed" } }])
      .when(admit(10))
      .admits({ allowed: true, probe: false });
  });

  it("keeps its own newer state when its own events come back", () => {
    const mine = [...failures(5), admit(64), fail(65, true)]; // re-opened, half-open from 125 s
    given([...mine, { type: "Adopt", circuit: { ...recordedOpen, halfOpenAt: at(64) } }])
      .when(admit(100))
      .admits({ allowed: false, retryInMs: 25_000 });
    given([...mine, { type: "Adopt", circuit: { ...recordedOpen, halfOpenAt: at(64), state: "half_open" } }])
      .when(admit(100))
      .admits({ allowed: false, retryInMs: 25_000 });
    const probing = [...failures(5), admit(64), admit(64), admit(64)];
    given([...probing, { type: "Adopt", circuit: { ...recordedOpen, halfOpenAt: at(64) } }])
      .when(admit(64))
      .admits({ allowed: false, retryInMs: 1_000 });
  });
});
