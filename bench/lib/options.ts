export interface Options {
  runs: number;
  only: string[] | null;
  quick: boolean;
  cpuProf: boolean;
}

export const USAGE = `npm run bench -- [--runs N] [--only name,name] [--quick] [--cpu-prof]

  --runs N       runs of every selected scenario (default 3); targets are checked on medians
  --only a,b     only these scenarios/ceilings (the ceilings they need run too), e.g. --only e2e
  --quick        short durations and 1 run: a smoke test of a few minutes (skips projection.rebuild)
  --cpu-prof     run every platform child with --cpu-prof into bench/profiles and summarise the
                 hottest functions at the end

names: ceiling.ingest ceiling.publish ceiling.post ceiling.pg ingest e2e fanout projection
       projection.rebuild backlog hol`;

export function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 3, only: null, quick: false, cpuProf: false };
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
        options.only = value().split(",").map((s) => s.trim()).filter(Boolean);
        break;
      case "--quick":
        options.quick = true;
        break;
      case "--cpu-prof":
        options.cpuProf = true;
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        return process.exit(0);
      default:
        throw new Error(`unknown option ${arg}\n\n${USAGE}`);
    }
  }
  if (options.quick && !runsGiven) options.runs = 1;
  return options;
}
