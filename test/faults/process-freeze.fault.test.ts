import { describeProcessFaults, SPLIT } from "./process-faults.js";

// A process that stops without dying (a VM paused, a stop-the-world pause): its messages come back
// to it once it runs again, beside the ones it still holds. At 100 events/s: the backlog of the 10 s
// frozen drains in 2–5 s after SIGCONT on this machine (at 150, 3–9 s in a slow hour, too near the
// 10 s bound to tell recovery from the machine's speed).
describeProcessFaults([{ name: "split roles, the dispatcher frozen past its ack wait", rate: 100, processes: SPLIT, faults: [["dispatcher", "freeze"]] }]);
