import { z } from "zod";
import { prefixedId } from "../common.js";
import { EndpointIn } from "./endpoints.js";
import { IngestIn } from "./ingest.js";

/** `POST /v1/webhooks/test` body: exactly one of `endpointId` and `url`. */
export const TestSendIn = z
  .object({
    endpointId: prefixedId("endpoint").optional().describe("Send to this endpoint of yours, signed with its current secret (404 when it is not yours)"),
    url: EndpointIn.shape.url.optional().describe("Send to this absolute http(s) URL, signed with a one-off secret that the answer returns"),
    eventType: IngestIn.shape.eventType,
    payload: IngestIn.shape.payload,
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.endpointId === undefined) === (body.url === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["endpointId"], message: "give exactly one of endpointId and url" });
    }
  })
  .describe("A test event to send once, for real, to an endpoint or a URL: exactly one of `endpointId` and `url` (else 400)");
export type TestSendIn = z.infer<typeof TestSendIn>;

/** The connection failures `error` names; a receiver's HTTP answer, whatever its status, is not one. */
export const TestSendError = z
  .enum(["timeout", "connection_error", "dns_error", "blocked_target"])
  .describe(
    "Why no HTTP answer came: `timeout`, `connection_error` (refused, reset), `dns_error`, or `blocked_target` " +
      "(the SSRF guard refused the address: loopback, private, link-local or another non-global range; nothing was sent)",
  );
export type TestSendError = z.infer<typeof TestSendError>;

/**
 * `POST /v1/webhooks/test` answer: always 200 once the request was attempted, success or not, as
 * API.md "Test send" says; a refused target is a connection failure like any other (`ok: false`,
 * `error: "blocked_target"`), not a 422, so that one request through the same guard answers for
 * both literal addresses and names that resolve to private ones.
 */
export const TestSendOut = z
  .object({
    ok: z.boolean().describe("True when the receiver answered 2xx"),
    status: z.number().int().optional().describe("The receiver's HTTP status, when it answered"),
    latencyMs: z.number().int().min(0).describe("Milliseconds from the start until the answer (or the failure)"),
    responseHeaders: z.record(z.string()).optional().describe("The receiver's headers: lower-cased, repeats joined with `, `, secrets redacted"),
    responseBodyPreview: z.string().optional().describe("The start of the receiver's body (at most 1 KiB), secrets redacted"),
    error: TestSendError.optional(),
    secret: z.string().optional().describe("Only for a bare `url`: the one-off `whsec_…` secret the request was signed with, to check your verifier"),
  })
  .strict()
  .describe(
    "The outcome of one real, signed request (`webhook-id` `msg_test_…`); it is recorded as no delivery and appends no event. " +
      "Always 200 once attempted: a target the SSRF guard refuses, by its literal address or by what its name resolves to, " +
      'answers 200 with `ok: false` and `error: "blocked_target"` (nothing is sent), not 422',
  );
export type TestSendOut = z.infer<typeof TestSendOut>;
