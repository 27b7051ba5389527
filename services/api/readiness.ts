import type { NatsConnection } from "@nats-io/transport-node";
import type { Readiness } from "./deps.js";
import type { ReadModels } from "./read-models.js";

const CHECK_TIMEOUT_MS = 2_000;

/** Resolves true when `probe` settles in time, false on an error or a timeout. */
async function answers(probe: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([probe().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The default readiness: a NATS round trip and a `SELECT 1`. */
export function createReadiness(nc: NatsConnection | undefined, readModels: Pick<ReadModels, "ping">): Readiness {
  return async () => {
    const [nats, postgres] = await Promise.all([
      nc && !nc.isClosed() ? answers(() => nc.flush()) : Promise.resolve(false),
      answers(() => readModels.ping()),
    ]);
    return { nats, postgres };
  };
}
