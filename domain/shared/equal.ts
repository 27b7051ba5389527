/**
 * Structural equality for JSON-like values (objects, arrays, primitives). Object keys whose value
 * is `undefined` count as absent, as they would after a round trip through JSON.
 */
export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  const left = definedEntries(a as Record<string, unknown>);
  const right = definedEntries(b as Record<string, unknown>);
  if (left.length !== right.length) return false;
  const rightMap = new Map(right);
  return left.every(([key, value]) => rightMap.has(key) && deepEqual(value, rightMap.get(key)));
};

const definedEntries = (o: Record<string, unknown>) => Object.entries(o).filter(([, v]) => v !== undefined);

/** Drops keys whose value is `undefined`, so event data serialises and compares the same way. */
export const compact = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
