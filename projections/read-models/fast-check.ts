import { z } from "zod";

/** True when zod would accept the value and return it unchanged. */
export type FastCheck = (value: unknown) => boolean;

const never: FastCheck = () => false;
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * Compiles a zod v3 schema into a predicate without allocations, for the projector's hot path (zod
 * copies every value it parses). Only the plain building blocks are understood: an unsupported
 * schema, check or object mode compiles to `false`, and a `false` means "ask zod" (which then
 * accepts, or throws its own error), never "invalid". So the predicate accepts a subset of what
 * zod accepts, and only values zod's output would equal; `fast-check.unit.test.ts` keeps it so.
 */
export function compileFastCheck(schema: z.ZodTypeAny): FastCheck {
  const def = schema._def as { typeName: z.ZodFirstPartyTypeKind } & Record<string, unknown>;
  const K = z.ZodFirstPartyTypeKind;
  switch (def.typeName) {
    case K.ZodString:
      return (def.checks as unknown[]).length === 0 ? (v) => typeof v === "string" : never;
    case K.ZodNumber:
      return numberCheck(def.checks as Array<{ kind: string; value?: number; inclusive?: boolean }>);
    case K.ZodBoolean:
      return (v) => typeof v === "boolean";
    case K.ZodLiteral: {
      const literal = def.value;
      return (v) => v === literal;
    }
    case K.ZodEnum: {
      const values = new Set<unknown>(def.values as string[]);
      return (v) => values.has(v);
    }
    case K.ZodUnknown:
    case K.ZodAny:
      return () => true;
    case K.ZodNullable: {
      const inner = compileFastCheck(def.innerType as z.ZodTypeAny);
      return (v) => v === null || inner(v);
    }
    case K.ZodOptional: {
      const inner = compileFastCheck(def.innerType as z.ZodTypeAny);
      return (v) => v === undefined || inner(v);
    }
    case K.ZodArray: {
      const { minLength, maxLength, exactLength } = def as Record<string, { value: number } | null>;
      // zod checks each bound it has: an exact length and a minimum both apply when both are set.
      const min = Math.max(minLength?.value ?? 0, exactLength?.value ?? 0);
      const max = Math.min(maxLength?.value ?? Number.POSITIVE_INFINITY, exactLength?.value ?? Number.POSITIVE_INFINITY);
      const inner = compileFastCheck(def.type as z.ZodTypeAny);
      return (v) => Array.isArray(v) && v.length >= min && v.length <= max && v.every(inner);
    }
    case K.ZodRecord: {
      const key = def.keyType as z.ZodTypeAny;
      if (!(key instanceof z.ZodString) || key._def.checks.length > 0) return never;
      const inner = compileFastCheck(def.valueType as z.ZodTypeAny);
      return (v) => isPlainObject(v) && Object.keys(v).every((k) => k !== "__proto__" && inner(v[k]));
    }
    case K.ZodUnion: {
      const options = (def.options as z.ZodTypeAny[]).map(compileFastCheck);
      return (v) => options.some((check) => check(v));
    }
    case K.ZodObject:
      return objectCheck(schema as z.AnyZodObject);
    default:
      return never;
  }
}

function numberCheck(checks: Array<{ kind: string; value?: number; inclusive?: boolean }>): FastCheck {
  const parts: FastCheck[] = [(v) => typeof v === "number" && !Number.isNaN(v)];
  for (const c of checks) {
    const bound = c.value!;
    if (c.kind === "int") parts.push((v) => Number.isInteger(v));
    else if (c.kind === "min") parts.push(c.inclusive ? (v) => (v as number) >= bound : (v) => (v as number) > bound);
    else if (c.kind === "max") parts.push(c.inclusive ? (v) => (v as number) <= bound : (v) => (v as number) < bound);
    else return never;
  }
  return (v) => parts.every((check) => check(v));
}

/** Strict objects only: a stripped key would make zod's output differ from the value. */
function objectCheck(schema: z.AnyZodObject): FastCheck {
  const { unknownKeys, catchall } = schema._def as { unknownKeys: string; catchall: z.ZodTypeAny };
  if (unknownKeys !== "strict" || !(catchall instanceof z.ZodNever)) return never;
  const fields = Object.entries(schema.shape as Record<string, z.ZodTypeAny>).map(([key, s]) => [key, compileFastCheck(s)] as const);
  const known = new Set(fields.map(([key]) => key));
  return (v) => {
    if (!isPlainObject(v)) return false;
    for (const [key, check] of fields) if (!check(v[key])) return false;
    for (const key in v) if (!known.has(key)) return false;
    return true;
  };
}
