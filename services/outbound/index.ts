/**
 * Outbound HTTP: the SSRF-guarded sender and the Standard Webhooks request builder, shared by the
 * dispatcher and the api's test sends.
 */
export { createHttpSender, type HttpSender, type HttpSenderOptions, type OutboundRequest, type SendResult } from "./http-sender.js";
export { signedRequest, type OutboundMessage } from "./signed-request.js";
