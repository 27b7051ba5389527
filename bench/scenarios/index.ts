import { ceilings } from "../ceilings/index.js";
import type { Scenario } from "../lib/scenario.js";
import { backlog } from "./backlog.js";
import { e2e, e2eStart } from "./e2e.js";
import { fanout } from "./fanout.js";
import { hol } from "./hol.js";
import { ingest } from "./ingest.js";
import { projection, rebuild } from "./projection.js";
import { scaleout } from "./scaleout.js";
import { tracingOverhead } from "./tracing-overhead.js";

/** Every scenario, in the order they run (ceilings first). */
export const scenarios: Scenario[] = [ingest, tracingOverhead, e2e, e2eStart, scaleout, fanout, projection, rebuild, backlog, hol];
export { ceilings };
