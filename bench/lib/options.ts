import { GATE_FLOOR } from "./gate.js";

export interface Options {
  runs: number;
  only: string[] | null;
  quick: boolean;
  cpuProf: boolean;
  /** `--gate`: the floor (a fraction of ceiling.ingest) e2e delivered/s must reach; null: no gate. */
  gateFloor: number | null;
}

export const USAGE = `npm run bench -- [--runs N] [--only name,name] [--quick] [--cpu-prof] [--gate [--gate-floor X]]

  --runs N       runs of every selected scenario (default 3); targets are checked on medians
  --only a,b     only these scenarios/ceilings (the ceilings they need run too), e.g. --only e2e,e2e-start
  --quick        short durations and 1 run: a smoke test of a few minutes (skips projection.rebuild)
  --cpu-prof     run every platform child with --cpu-prof into bench/profiles and summarise the
                 hottest functions at the end
  --gate         CI throughput gate: exit non-zero unless e2e delivered/s ≥ ${GATE_FLOOR} × ceiling.ingest
                 (same run), nothing was lost and no scenario failed; e2e gives up on its drain as
                 soon as the floor is out of reach. CI runs: --quick --only e2e,fanout --gate
  --gate-floor X the gate's floor instead of ${GATE_FLOOR} (implies --gate)

names: ceiling.ingest ceiling.publish ceiling.post ceiling.pg ingest e2e fanout projection
       projection.rebuild backlog hol tracing-overhead`;

export function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 3, only: null, quick: false, cpuProf: false, gateFloor: null };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? "";
    switch (flag) {
      case "--runs": {
        options.runs = Number(value());
        runsGiven = true;
        if (!Number.isInteger(options.runs) || options.runs < 1 || options.runs > 20) throw new Error("--runs must be an integer from 1 to 20");
        break;
      }
      case "--only":
        options.only = value()
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case "--quick":
        options.quick = true;
        break;
      case "--cpu-prof":
        options.cpuProf = true;
        break;
      case "--gate":
        options.gateFloor ??= GATE_FLOOR;
        break;
      case "--gate-floor": {
        options.gateFloor = Number(value());
        if (!Number.isFinite(options.gateFloor) || options.gateFloor <= 0 || options.gateFloor > 10)
          throw new Error("--gate-floor must be a number above 0 (a fraction of ceiling.ingest)");
        break;
      }
      case "--help":
      case "-h":
        console.log(USAGE);
        return process.exit(0);
      default:
        throw new Error(`unknown option ${arg}\n\n${USAGE}`);
    }
  }
  if (options.quick && !runsGiven) options.runs = 1;
  if (options.gateFloor !== null && options.only && !options.only.includes("e2e")) throw new Error("--gate measures e2e: add it to --only");
  return options;
}
