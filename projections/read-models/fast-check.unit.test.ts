import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Envelope } from "../../contracts/envelope.js";
import { EventSchemas } from "../../contracts/events.js";
import { upcastEnvelope } from "../../domain/upcast.js";
import { randomHistory } from "../testing/random-history.js";
import { compileFastCheck } from "./fast-check.js";
import { isKnownType, parseEnvelope } from "./shared.js";

/** The validation the fast path stands in for: zod alone (on the upcast envelope, as parseEnvelope). */
function zodParse(raw: unknown) {
  const envelope = upcastEnvelope(Envelope.parse(raw));
  if (!isKnownType(envelope.type)) return null;
  return { ...envelope, data: EventSchemas[envelope.type].parse(envelope.data) as unknown };
}
const outcome = (fn: () => unknown) => {
  try {
    return { ok: true, value: fn() };
  } catch {
    return { ok: false };
  }
};

/** The value with one change at one place: every key dropped, retyped, or an extra key beside it. */
function* variants(value: unknown): Generator<unknown> {
  const replacements = [null, 0, 1.5, -1, "x", "", true, [], {}, undefined];
  for (const r of replacements) yield r;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) for (const v of variants(item)) yield value.map((x, j) => (j === i ? v : x));
    yield [...value, "extra"];
  } else if (typeof value === "object" && value !== null) {
    const object = value as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      const { [key]: _, ...rest } = object;
      yield rest;
      for (const v of variants(object[key])) yield { ...object, [key]: v };
    }
    yield { ...object, extra: 1 };
    yield JSON.parse(`{"__proto__": {"polluted": true}, ${JSON.stringify(object).slice(1)}`) as unknown;
  }
}

describe("compileFastCheck", () => {
  const samples = randomHistory(7, 200).map((e) => JSON.parse(JSON.stringify(e.envelope)) as Record<string, unknown>);

  it("accepts the hot envelopes as they are (the fast path is taken)", () => {
    const hot = samples.filter((e) => /^(message|routing|delivery)\./.test(e.type as string));
    expect(hot.length).toBeGreaterThan(100);
    for (const e of hot) expect(parseEnvelope(e), e.type as string).toBe(e);
  });

  it("never accepts what zod refuses or would change: parseEnvelope equals zod alone on every variant", () => {
    let tried = 0;
    for (const sample of samples.slice(0, 60)) {
      for (const variant of variants(sample)) {
        tried += 1;
        const fast = outcome(() => parseEnvelope(variant));
        const slow = outcome(() => zodParse(variant));
        expect(fast, JSON.stringify(variant)).toEqual(slow);
      }
    }
    expect(tried).toBeGreaterThan(10_000);
  });

  it("compiles to `false` (ask zod) for what it does not model", () => {
    const cases: Array<[z.ZodTypeAny, unknown]> = [
      [z.object({ a: z.string() }), { a: "x" }], // strips unknown keys: not strict
      [z.object({ a: z.string() }).passthrough(), { a: "x" }],
      [z.string().min(1), "x"],
      [z.string().email(), "a@b.example"],
      [z.number().multipleOf(2), 4],
      [z.string().transform((s) => s.length), "x"],
      [z.string().default("d"), "x"],
      [z.record(z.string().min(1), z.unknown()), { a: 1 }],
      [z.date(), new Date()],
    ];
    for (const [schema, value] of cases) {
      expect(schema.safeParse(value).success).toBe(true);
      expect(compileFastCheck(schema)(value)).toBe(false);
    }
    expect(compileFastCheck(z.object({ n: z.number().int().min(1), s: z.string().nullable().optional() }).strict())({ n: 2, s: null })).toBe(true);
  });

  it("checks an array's length bounds as zod does", () => {
    const schemas = [z.array(z.string()).min(1), z.array(z.string()).max(2), z.array(z.string()).length(2), z.array(z.string()).length(2).min(3)];
    for (const schema of schemas) {
      for (const value of [[], ["a"], ["a", "b"], ["a", "b", "c"]]) expect(compileFastCheck(schema)(value), JSON.stringify(value)).toBe(schema.safeParse(value).success);
    }
  });
});
