import { describeProcessFaults, SPLIT } from "./process-faults.js";

describeProcessFaults([
  // The delivery path first, while its work is in hand.
  {
    name: "split roles, kill -9 of each in turn",
    rate: 150,
    processes: SPLIT,
    faults: ["dispatcher", "router", "api", "projector", "replayer"].map((role) => [role, "kill"]),
  },
  // One process for everything: the crash takes every role at once.
  { name: "all roles in one process, kill -9", rate: 150, processes: [SPLIT.join(",")], faults: [[SPLIT.join(","), "kill"]] },
]);
