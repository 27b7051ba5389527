/**
 * The pure domain: deciders per aggregate, routing, retry maths and signing. No IO, no clock and
 * no randomness: time, ids and random numbers arrive on commands.
 */
export { fold, type Decider } from "./decider.js";
export { DomainError, type DomainErrorCode } from "./errors.js";

export { tenantDecider, type TenantCommand, type TenantEvent, type TenantState } from "./tenant/tenant.js";
export { apiKeyDecider, type ApiKeyCommand, type ApiKeyEvent, type ApiKeyRecord, type ApiKeyState } from "./apikey/apikey.js";

export {
  describeMatch,
  EVENT_TYPE_RE,
  isValidEventTypePattern,
  matchesEventType,
  MAX_PATTERN_LENGTH,
  type MatchDescription,
} from "./endpoint/patterns.js";
export {
  DISABLED_BY_USER,
  effectiveDeliveryPolicy,
  effectiveRetryPolicy,
  endpointDecider,
  type EndpointChanges,
  type EndpointCommand,
  type EndpointEvent,
  type EndpointRecord,
  type EndpointState,
} from "./endpoint/endpoint.js";

export { decideFanout, deliveryIdFor, type FanoutInput, type RoutableEndpoint } from "./routing/fanout.js";
export { boundCandidates, candidateSetDigest, type Candidate, type CandidateSet } from "./routing/candidate-set.js";
export { upcastEnvelope } from "./upcast.js";
export { messageDecider, type MessageCommand, type MessageEvent, type MessageState } from "./message/message.js";

export { backoffDelayMs, JITTER_RATIO, MAX_RETRY_AFTER_MS, parseRetryAfterMs } from "./delivery/backoff.js";
export { parseHttpDate } from "./delivery/http-date.js";
export {
  classifyAttempt,
  networkErrorOf,
  type AttemptResult,
  type Classification,
  type NetworkError,
  type Verdict,
} from "./delivery/classify.js";
export { decideOutcome, type DeliveryOutcomeEvent, type OutcomeInput } from "./delivery/outcome.js";
export {
  deliveryDecider,
  isTerminal,
  type DeliveryCommand,
  type DeliveryEvent,
  type DeliveryState,
  type ObservedAttempt,
} from "./delivery/delivery.js";

export {
  buildOutboundBody,
  generateSecret,
  SECRET_MAX_BYTES,
  SECRET_MIN_BYTES,
  SECRET_PREFIX,
  secretKey,
  signPayload,
  type OutboundBodyInput,
  type SignInput,
} from "./signing/standard-webhooks.js";

export { REDACTED, redact, redactObject, SECRET_KEY_PATTERN, type RedactOptions } from "./redaction/redact.js";

export {
  applySourceChanges,
  assertValidSource,
  sourceDecider,
  type SourceChanges,
  type SourceCommand,
  type SourceEvent,
  type SourceRecord,
  type SourceState,
} from "./source/source.js";
export { DEFAULT_TOLERANCE_SECONDS, verifyInbound, type InboundRequest, type Verification, type VerifyInput } from "./inbound/verify.js";
export { describeInbound, fallbackEventType, type InboundMessage } from "./inbound/describe.js";
