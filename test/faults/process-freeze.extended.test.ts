import { describeProcessFaults, SPLIT } from "./process-faults.js";

// A process that stops without dying (a VM paused, a stop-the-world pause): its messages come back
// to it once it runs again, beside the ones it still holds. Not in `npm test` yet: its backlog of
// 10 s drains in 6–9 s after SIGCONT, too close to the 10 s bound to gate CI on (README "Reliability").
describeProcessFaults([{ name: "split roles, the dispatcher frozen past its ack wait", processes: SPLIT, faults: [["dispatcher", "freeze"]] }]);
