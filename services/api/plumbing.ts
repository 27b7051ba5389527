import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { CONTRACT_VERSION, HEADERS } from "../../contracts/http/common.js";
import type { CommandContext } from "../../streams/event-store.js";
import { authOf } from "./auth.js";
import type { ReadModels } from "./read-models.js";
import * as E from "./errors.js";

/** A client's request id is kept when it is short and plain; anything else gets a fresh UUID. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function genReqId(request: IncomingMessage): string {
  const given = request.headers[HEADERS.requestId];
  return typeof given === "string" && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

/** How long a read waits for `X-Zen-Min-Seq` (API.md "Conventions"). */
export const MIN_SEQ_WAIT_MS = 5_000;

/**
 * Headers every response carries, and the contract-version check. Registered first, so even a 401
 * or a 404 answers with the request id and the contract version.
 */
export const plumbingPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook("onRequest", async (request, reply) => {
      reply.header(HEADERS.requestId, request.id);
      reply.header(HEADERS.contractVersion, CONTRACT_VERSION);
      const asked = request.headers[HEADERS.contractVersion];
      if (asked !== undefined && asked !== CONTRACT_VERSION) throw E.unsupportedContractVersion(String(asked));
    });
    app.addHook("onSend", async (request, reply, payload) => {
      reply.header(HEADERS.requestId, request.id);
      reply.header(HEADERS.contractVersion, CONTRACT_VERSION);
      return payload;
    });
  },
  { name: "zen-plumbing" },
);

/** Context of the events a request causes: its id is their correlation id. */
export function commandContext(request: FastifyRequest, now: Date): CommandContext {
  return { correlationId: request.id, causationId: null, actor: authOf(request).actor, now };
}

/** Marks an accepted command with the stream sequence of its last event. */
export function withSeq(reply: FastifyReply, lastSeq: number): FastifyReply {
  return reply.header(HEADERS.seq, String(lastSeq));
}

/** A preHandler for reads: waits until the read models have applied `X-Zen-Min-Seq`. */
export function minSeqHook(readModels: Pick<ReadModels, "waitForSeq">) {
  return async (request: FastifyRequest) => {
    const raw = request.headers[HEADERS.minSeq];
    if (raw === undefined) return;
    const text = String(raw);
    if (!/^\d{1,15}$/.test(text)) {
      throw E.invalidRequest("X-Zen-Min-Seq must be a stream sequence", [{ path: "headers.x-zen-min-seq", message: "must be a non-negative integer" }]);
    }
    const seq = Number(text);
    if (seq > 0 && !(await readModels.waitForSeq(seq, MIN_SEQ_WAIT_MS))) throw E.readModelBehind(seq);
  };
}
