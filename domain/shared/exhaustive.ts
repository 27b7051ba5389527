/** Compile-time proof that every member of a union was handled; throws if reached at runtime. */
export const assertNever = (value: never, what = "value"): never => {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
};
