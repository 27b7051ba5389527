/** How long an endpoint may fail without a break before it is disabled (API.md: 5 days by default). */
export const DEFAULT_DISABLE_AFTER_MS = 5 * 24 * 3_600_000;

/** Why a 410 disabled an endpoint. */
export const GONE_REASON = "receiver answered 410 Gone";

const UNITS: ReadonlyArray<[number, string]> = [
  [86_400_000, "day"],
  [3_600_000, "hour"],
  [60_000, "minute"],
  [1_000, "second"],
];

/** "5 days", "90 minutes", "1500 ms": the largest unit that divides the duration exactly. */
export const describeDuration = (ms: number): string => {
  const unit = UNITS.find(([size]) => ms >= size && ms % size === 0);
  if (!unit) return `${ms} ms`;
  const n = ms / unit[0];
  return `${n} ${unit[1]}${n === 1 ? "" : "s"}`;
};

/**
 * Endpoint health: the reason to disable an endpoint whose failures have lasted, without a
 * success in between, longer than `disableAfterMs` since `failingSince`; undefined while it may go on.
 */
export const unhealthyReason = (input: { failingSince: string | undefined; now: string; disableAfterMs: number }): string | undefined => {
  if (input.failingSince === undefined) return undefined;
  const since = Date.parse(input.failingSince);
  const now = Date.parse(input.now);
  if (Number.isNaN(since) || Number.isNaN(now) || now - since <= input.disableAfterMs) return undefined;
  return `failing continuously since ${input.failingSince} (longer than ${describeDuration(input.disableAfterMs)})`;
};
