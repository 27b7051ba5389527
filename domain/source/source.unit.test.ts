import { describe, expect, it } from "vitest";
import type { HmacConfig } from "../../contracts/inbound.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { sourceDecider, type SourceCommand, type SourceEvent } from "./source.js";

const secret = "enc:v1:k1:c2VjcmV0Ynl0ZXM=";
const rolled = "enc:v1:k1:bmV3c2VjcmV0";
const base = { name: "GitHub", scheme: "github" as const, secret };
/** A 32-byte key however its scheme reads it. */
const strong = { base64: 32, text: 32 };
const create: SourceCommand = { type: "CreateSource", sourceId: "src_1", ...base, secretKeyBytes: strong };
const created: SourceEvent = { type: "source.created", data: base };
const deleted: SourceEvent = { type: "source.deleted", data: {} };
const hmac: HmacConfig = { algorithm: "sha256", header: "X-Signature", encoding: "hex" };
const hmacCreated: SourceEvent = { type: "source.created", data: { name: "Acme", scheme: "hmac", secret, hmac } };
const update = (changes: Extract<SourceCommand, { type: "UpdateSource" }>["changes"], secretKeyBytes = strong): SourceCommand => ({
  type: "UpdateSource",
  changes,
  ...(changes.secret === undefined ? {} : { secretKeyBytes }),
});

describe("source: create", () => {
  it("creates a source", () => {
    given(sourceDecider, []).when(create).then([created]);
  });

  it("records the generic settings and where the event type comes from", () => {
    const data = {
      name: "Acme",
      scheme: "hmac" as const,
      secret,
      hmac: { ...hmac, timestampHeader: "X-Ts", signedContent: "{timestamp}.{body}" },
      eventTypeFrom: { jsonPointer: "/kind" },
    };
    given(sourceDecider, [])
      .when({ type: "CreateSource", sourceId: "src_1", ...data, secretKeyBytes: strong })
      .then([{ type: "source.created", data }]);
  });

  it("refuses to create twice, even after a delete", () => {
    given(sourceDecider, [created]).when(create).thenThrows("conflict");
    given(sourceDecider, [created, deleted]).when(create).thenThrows("conflict");
  });

  it.each([
    ["a plain-text secret", { secret: "whsec_plain" }],
    ["an id without src_", { sourceId: "ep_1" }],
    ["hmac settings on another scheme", { hmac }],
    ["scheme hmac without settings", { scheme: "hmac" }],
    ["a template without {body}", { scheme: "hmac", hmac: { ...hmac, signedContent: "{timestamp}" } }],
    ["an unknown placeholder", { scheme: "hmac", hmac: { ...hmac, signedContent: "{nonce}.{body}" } }],
    ["{timestamp} without a timestamp header", { scheme: "hmac", hmac: { ...hmac, signedContent: "{timestamp}.{body}" } }],
    ["{id} without an id header", { scheme: "hmac", hmac: { ...hmac, signedContent: "{id}.{body}" } }],
    ["a tolerance without a timestamp header", { scheme: "hmac", hmac: { ...hmac, toleranceSeconds: 60 } }],
    // Unsigned, the id could be changed on a captured request to replay it; an unsigned time means nothing.
    ["an id header the signature does not cover", { scheme: "hmac", hmac: { ...hmac, idHeader: "X-Id" } }],
    ["a timestamp header the signature does not cover", { scheme: "hmac", hmac: { ...hmac, timestampHeader: "X-Ts" } }],
  ])("refuses %s", (_, override) => {
    given(sourceDecider, [])
      .when({ ...create, ...override } as SourceCommand)
      .thenThrows("unprocessable");
  });

  it("says which placeholder an unsigned id or timestamp header needs", () => {
    const attempt = (settings: HmacConfig) => () => sourceDecider.decide({ ...create, scheme: "hmac", hmac: settings }, sourceDecider.initialState());
    expect(attempt({ ...hmac, idHeader: "X-Id" })).toThrow(/hmac\.idHeader .*\{id\}.*signedContent/);
    expect(attempt({ ...hmac, timestampHeader: "X-Ts", signedContent: "{body}" })).toThrow(/hmac\.timestampHeader .*\{timestamp\}.*signedContent/);
    expect(attempt({ ...hmac, idHeader: "X-Id", timestampHeader: "X-Ts", signedContent: "{id}.{timestamp}.{body}" })()).toHaveLength(1);
  });
});

describe("source: weak secrets", () => {
  it.each([
    // Standard Webhooks reads the base64 after whsec_: "whsec_........" decodes to no key at all.
    ["standard-webhooks", { base64: 0, text: 14 }],
    ["standard-webhooks", { base64: 15, text: 26 }],
    // The providers' schemes and hmac read the text itself.
    ["github", { base64: 6, text: 8 }],
    ["stripe", { base64: 11, text: 15 }],
    ["slack", { base64: 0, text: 0 }],
    ["shopify", { base64: 9, text: 12 }],
    ["hmac", { base64: 11, text: 15 }],
  ] as const)("refuses a %s secret whose key is under 16 bytes (%o), on create and on update", (scheme, secretKeyBytes) => {
    const settings = scheme === "hmac" ? { hmac } : {};
    given(sourceDecider, [])
      .when({ ...create, scheme, ...settings, secretKeyBytes })
      .thenThrows("unprocessable");
    const createdAs: SourceEvent = { type: "source.created", data: { ...base, scheme, ...settings } };
    given(sourceDecider, [createdAs])
      .when(update({ secret: rolled }, secretKeyBytes))
      .thenThrows("unprocessable");
  });

  it("reads the key as the scheme does: 16 bytes of text pass for github, not for standard-webhooks when they decode to less", () => {
    const sixteenChars = { base64: 12, text: 16 };
    given(sourceDecider, [])
      .when({ ...create, secretKeyBytes: sixteenChars })
      .then([created]);
    given(sourceDecider, [])
      .when({ ...create, scheme: "standard-webhooks", secretKeyBytes: sixteenChars })
      .thenThrows("unprocessable");
  });

  it("refuses a new secret given without its key length", () => {
    given(sourceDecider, [created])
      .when({ type: "UpdateSource", changes: { secret: rolled } })
      .thenThrows("unprocessable");
  });
});

describe("source: update", () => {
  it("records only the fields that change; a new secret always counts", () => {
    given(sourceDecider, [created])
      .when(update({ name: "GitHub", secret: rolled, eventTypeFrom: null }))
      .then([{ type: "source.updated", data: { secret: rolled } }]);
  });

  it("sets and clears eventTypeFrom", () => {
    const set: SourceEvent = { type: "source.updated", data: { eventTypeFrom: { header: "X-Kind" } } };
    given(sourceDecider, [created])
      .when(update({ eventTypeFrom: { header: "X-Kind" } }))
      .then([set]);
    given(sourceDecider, [created, set])
      .when(update({ eventTypeFrom: { header: "X-Kind" } }))
      .then([]);
    given(sourceDecider, [created, set])
      .when(update({ eventTypeFrom: null }))
      .then([{ type: "source.updated", data: { eventTypeFrom: null } }]);
    expect(fold(sourceDecider, [created, set, { type: "source.updated", data: { eventTypeFrom: null } }])).toEqual({ status: "active", ...base });
  });

  it("changes an hmac source's settings, compared by value, and refuses them on other schemes", () => {
    given(sourceDecider, [hmacCreated])
      .when(update({ hmac: { ...hmac } }))
      .then([]);
    given(sourceDecider, [hmacCreated])
      .when(update({ hmac: { ...hmac, encoding: "base64" } }))
      .then([{ type: "source.updated", data: { hmac: { ...hmac, encoding: "base64" } } }]);
    given(sourceDecider, [created]).when(update({ hmac })).thenThrows("unprocessable");
  });

  it("refuses a patch that leaves an id header unsigned", () => {
    given(sourceDecider, [hmacCreated])
      .when(update({ hmac: { ...hmac, idHeader: "X-Id" } }))
      .thenThrows("unprocessable");
    given(sourceDecider, [hmacCreated])
      .when(update({ hmac: { ...hmac, idHeader: "X-Id", signedContent: "{id}:{body}" } }))
      .then([{ type: "source.updated", data: { hmac: { ...hmac, idHeader: "X-Id", signedContent: "{id}:{body}" } } }]);
  });

  it("refuses a plain-text secret and an unknown or deleted source", () => {
    given(sourceDecider, [created])
      .when(update({ secret: "plain" }))
      .thenThrows("unprocessable");
    given(sourceDecider, [])
      .when(update({ name: "x" }))
      .thenThrows("not_found");
    given(sourceDecider, [created, deleted])
      .when(update({ name: "x" }))
      .thenThrows("not_found");
  });
});

describe("source: delete and refused signatures", () => {
  it("deletes once", () => {
    given(sourceDecider, [created]).when({ type: "DeleteSource" }).then([deleted]);
    given(sourceDecider, [created, deleted]).when({ type: "DeleteSource" }).thenThrows("not_found");
  });

  it("records a refused request with the source's scheme, leaving the source as it was", () => {
    const [rejected] = given(sourceDecider, [created])
      .when({ type: "RejectSignature", reason: "signature_mismatch" })
      .then([{ type: "signature.rejected", data: { reason: "signature_mismatch", scheme: "github" } }]);
    expect(fold(sourceDecider, [created, rejected!])).toEqual(fold(sourceDecider, [created]));
  });

  it("records the delivery id of a replay", () => {
    given(sourceDecider, [created])
      .when({ type: "RejectSignature", reason: "replayed", deliveryId: "d-1" })
      .then([{ type: "signature.rejected", data: { reason: "replayed", scheme: "github", deliveryId: "d-1" } }]);
  });

  it("refuses to record for a deleted source", () => {
    given(sourceDecider, [created, deleted]).when({ type: "RejectSignature", reason: "missing_signature" }).thenThrows("not_found");
  });
});
