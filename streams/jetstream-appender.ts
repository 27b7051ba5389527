import { JetStreamApiError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  ConnectionError,
  createInbox,
  NoRespondersError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/transport-node";

/** What JetStream answers a publish with: where the message was stored, or why it was not. */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface ApiAnswer {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code: number; err_code: number; description: string };
}

interface Pending {
  resolve(ack: PubAck): void;
  reject(error: Error): void;
  deadline: number;
}

/** How often unanswered publishes are checked against their deadline. */
const SWEEP_EVERY_MS = 250;

/**
 * JetStream publishes with their acks taken on one wildcard inbox subscription. The client's own
 * `js.publish` goes through a request per message — a muxed request object, a timer and a
 * stack-traced `RequestError` built when the settled request is cancelled — a fifth of a delivery
 * process's CPU in a profile. Here a publish is one `HPUB` with a numbered reply subject, its
 * answer is matched by number, and one timer expires every unanswered publish. The errors are the
 * client's (`JetStreamApiError`, `TimeoutError`, `NoRespondersError`), so callers see no difference.
 */
export function createJetStreamAppender(nc: NatsConnection, timeoutMs = 5_000) {
  const inbox = createInbox();
  const pending = new Map<number, Pending>();
  let counter = 0;

  const settle = (message: Msg) => {
    const id = Number(message.subject.slice(inbox.length + 1));
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    if (message.data.length === 0) {
      const status = message.headers?.code;
      waiting.reject(status === 503 ? new NoRespondersError(message.subject) : new Error(`JetStream answered status ${status ?? "unknown"}`));
      return;
    }
    let answer: ApiAnswer;
    try {
      answer = message.json<ApiAnswer>();
    } catch {
      waiting.reject(new Error("JetStream answered a publish with something that is not JSON"));
      return;
    }
    if (answer.error) waiting.reject(new JetStreamApiError(answer.error));
    else if (!answer.stream) waiting.reject(new Error("invalid JetStream publish acknowledgement"));
    else waiting.resolve({ stream: answer.stream, seq: answer.seq ?? 0, duplicate: answer.duplicate === true });
  };

  // An error here (the subscription closed with the connection) carries no message: closed() rejects the rest.
  nc.subscribe(`${inbox}.*`, {
    callback: (error, message) => {
      if (!error) settle(message);
    },
  });

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [id, waiting] of pending) {
      if (waiting.deadline > now) continue;
      pending.delete(id);
      waiting.reject(new TimeoutError());
    }
  }, SWEEP_EVERY_MS);
  sweeper.unref();

  // While the connection is down a publish is refused at once rather than buffered by the client:
  // a buffered one would be stored when the connection comes back, after its caller was told it
  // failed. A publish still unanswered when the connection comes back may have been stored with its
  // answer lost in the break: expired then, so its caller re-sends it (the same message id tells)
  // at once rather than after the full timeout.
  let disconnected = false;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") disconnected = true;
      if (status.type !== "reconnect") continue;
      disconnected = false;
      for (const waiting of pending.values()) waiting.reject(new TimeoutError());
      pending.clear();
    }
  })();

  void nc.closed().then(() => {
    clearInterval(sweeper);
    for (const waiting of pending.values()) waiting.reject(new ClosedConnectionError());
    pending.clear();
  });

  return {
    /**
     * Publishes `data` to `subject`; resolves with the stream's acknowledgement. A `TimeoutError`
     * leaves it unknown whether the message was stored; a `ConnectionError` says it was not sent.
     */
    publish(subject: string, data: string | Uint8Array, headers: MsgHdrs, timeout = timeoutMs): Promise<PubAck> {
      if (disconnected) return Promise.reject(new ConnectionError("disconnected from NATS: not sent"));
      const id = ++counter;
      return new Promise<PubAck>((resolve, reject) => {
        nc.publish(subject, data, { reply: `${inbox}.${id}`, headers });
        pending.set(id, { resolve, reject, deadline: Date.now() + timeout });
      });
    },
  };
}

export type JetStreamAppender = ReturnType<typeof createJetStreamAppender>;
