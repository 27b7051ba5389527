/** The dispatcher's stages, in order; an error is tagged with the stage it came from. */
export type DispatchStage = "admit" | "slot" | "share" | "prepare" | "send" | "record";

/** A stage failed: the delivery event is redelivered; `cause` is the original error. */
export class DispatchStageError extends Error {
  override name = "DispatchStageError";
  constructor(
    readonly stage: DispatchStage,
    override readonly cause: unknown,
  ) {
    super(`dispatch stage ${stage} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Runs one stage, tagging what it throws with the stage's name (once: an inner tag wins). */
export async function inStage<T>(stage: DispatchStage, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw error instanceof DispatchStageError ? error : new DispatchStageError(stage, error);
  }
}

/** The original error behind a stage's tag. */
export const untagged = (error: unknown): unknown => (error instanceof DispatchStageError ? error.cause : error);
