import { checkTargetUrl, compileTargetPolicy } from "../../domain/targets/policy.js";
import * as E from "./errors.js";

/**
 * Refuses (422) a target URL whose host is, literally, not a global address: an IP in a non-global
 * range in any spelling the URL parser normalises (`127.1`, `2130706433`, `[::ffff:127.0.0.1]`…) or
 * a `localhost` name, unless `allowPrivateTargets` is set or `allowedCidrs` covers it. The rules are
 * the connect-time guard's (`domain/targets`); names that resolve to private addresses are caught
 * there, on the address actually dialled.
 */
export function assertPublicTarget(url: string, allowPrivateTargets: boolean, allowedCidrs: readonly string[] = []): void {
  if (allowPrivateTargets) return;
  const verdict = checkTargetUrl(url, compileTargetPolicy({ allowedCidrs }));
  if (!verdict.allowed) throw E.unprocessable(`url points at a non-global address (${verdict.range}); webhooks go to public addresses only`);
}
