import type { Scenario } from "../lib/scenario.js";

/** 6. head-of-line isolation: belongs to the delivery-hardening issue. */
export const NOT_YET = "not yet implemented (needs the delivery-hardening issue)";

export const hol: Scenario = {
  name: "hol",
  title: "head-of-line isolation (dead endpoint with 10,000 pending)",
  needs: [],
  show: [["status", "status"]],
  run: async ({ log }) => {
    log(`hol: ${NOT_YET}`);
    return { status: NOT_YET };
  },
};
