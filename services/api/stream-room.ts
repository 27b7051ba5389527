import type { JetStreamManager } from "@nats-io/jetstream";
import { ApiError } from "./errors.js";

/** How old the stream's size may be before a request looks again (without waiting for the answer). */
const REFRESH_MS = 2_000;
const FULL_RETRY_AFTER_SECONDS = 60;

/** Whether the event stream has room for another message under `ZEN_STREAM_MAX_BYTES`. */
export interface StreamRoom {
  /** Answers 503 once the stream holds its cap; a no-op without one. */
  assertRoom(): Promise<void>;
}

/**
 * The event stream's size cap, held by the api rather than by JetStream: new messages (ingest and
 * inbound) are refused once the stream holds `maxBytes`, while everything already accepted is still
 * routed, delivered and recorded. Not the stream's own `max_bytes`: with the `new` discard policy
 * nats-server 2.9.10 still drops the oldest messages when an append carries an expected subject
 * sequence (as every append here does), and the registry lives in the same stream, so an
 * endpoint's first event would go. The size is read at most every 2 s, a request never waiting for
 * it but the first: the cap may be passed by what 2 s of ingest adds.
 */
export function createStreamRoom({
  jsm,
  stream,
  maxBytes,
  now = Date.now,
}: {
  jsm?: JetStreamManager;
  stream: string;
  maxBytes: number;
  now?: () => number;
}): StreamRoom {
  if (maxBytes < 0 || !jsm) return { assertRoom: async () => undefined };
  let bytes: number | undefined;
  let readAt = 0;
  let reading: Promise<void> | undefined;
  const read = () => {
    reading ??= jsm.streams
      .info(stream)
      .then((info) => {
        bytes = info.state.bytes;
        readAt = now();
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  return {
    async assertRoom() {
      if (bytes === undefined) await read();
      else if (now() - readAt > REFRESH_MS) void read().catch(() => undefined);
      if ((bytes ?? 0) >= maxBytes) {
        throw new ApiError(
          503,
          "dependency_unavailable",
          `the event stream is full (${bytes} of ZEN_STREAM_MAX_BYTES ${maxBytes} bytes): new messages are refused until the operator raises the cap`,
          undefined,
          { "retry-after": String(FULL_RETRY_AFTER_SECONDS) },
        );
      }
    },
  };
}
