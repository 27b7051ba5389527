import { describe, expect, it } from "vitest";
import { DEFAULT_DELIVERY_POLICY, DEFAULT_RETRY_POLICY } from "../../contracts/common.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import {
  DEFAULT_ROTATION_GRACE_SECONDS,
  MAX_ROTATION_GRACE_SECONDS,
  signingSecrets,
  effectiveDeliveryPolicy,
  effectiveRetryPolicy,
  endpointDecider,
  type EndpointCommand,
  type EndpointEvent,
} from "./endpoint.js";

const secret = "enc:v1:k1:c2VjcmV0Ynl0ZXM=";
const base = { url: "https://example.com/hook", eventTypes: ["invoice.*"], secret };
/** A 32-byte key however it is read. */
const strong = { base64: 32, text: 52 };
const register: EndpointCommand = { type: "RegisterEndpoint", endpointId: "ep_1", ...base, secretKeyBytes: strong };
const registered: EndpointEvent = { type: "endpoint.registered", data: base };
const disabled: EndpointEvent = { type: "endpoint.disabled", data: { reason: "HTTP 410 from receiver" } };
const deleted: EndpointEvent = { type: "endpoint.deleted", data: {} };
const closed = { state: "closed" } as const;
const update = (changes: Extract<EndpointCommand, { type: "UpdateEndpoint" }>["changes"]): EndpointCommand => ({
  type: "UpdateEndpoint",
  changes,
});

describe("endpoint: register", () => {
  it("registers an endpoint", () => {
    given(endpointDecider, []).when(register).then([registered]);
  });

  it("records every optional setting given", () => {
    const full = {
      ...base,
      description: "billing",
      rateLimit: { perSecond: 5 },
      retryPolicy: { maxAttempts: 3 },
      deliveryPolicy: { timeoutMs: 1000 },
      metadata: { team: "billing" },
    };
    given(endpointDecider, [])
      .when({ type: "RegisterEndpoint", endpointId: "ep_1", ...full, secretKeyBytes: strong })
      .then([{ type: "endpoint.registered", data: full }]);
  });

  it("refuses to register twice", () => {
    given(endpointDecider, [registered]).when(register).thenThrows("conflict");
    given(endpointDecider, [registered, deleted]).when(register).thenThrows("conflict");
  });

  it.each([
    ["a relative url", { url: "/hook" }],
    ["a non-http url", { url: "ftp://example.com/hook" }],
    ["credentials in the url", { url: "https://user:pass@example.com/hook" }],
    ["no event types", { eventTypes: [] }],
    ["an invalid pattern", { eventTypes: ["invoice.*", "*.paid"] }],
    ["initialDelayMs above the default maxDelayMs", { retryPolicy: { initialDelayMs: 700_000 } }],
    ["initialDelayMs above maxDelayMs", { retryPolicy: { initialDelayMs: 10, maxDelayMs: 5 } }],
    ["a plain-text secret", { secret: "whsec_abc" }],
    ["an id without ep_", { endpointId: "msg_1" }],
  ])("refuses %s", (_, override) => {
    given(endpointDecider, [])
      .when({ ...register, ...override } as EndpointCommand)
      .thenThrows("unprocessable");
  });
});

describe("endpoint: update", () => {
  it("records only the fields that change", () => {
    given(endpointDecider, [registered])
      .when(update({ url: base.url, eventTypes: ["invoice.*", "user.*"], active: true, description: null }))
      .then([{ type: "endpoint.updated", data: { eventTypes: ["invoice.*", "user.*"] } }]);
  });

  it("compares nested settings by value", () => {
    const withPolicy: EndpointEvent = { type: "endpoint.registered", data: { ...base, retryPolicy: { maxAttempts: 3 } } };
    given(endpointDecider, [withPolicy])
      .when(update({ retryPolicy: { maxAttempts: 3 } }))
      .then([]);
    given(endpointDecider, [withPolicy])
      .when(update({ retryPolicy: null }))
      .then([{ type: "endpoint.updated", data: { retryPolicy: null } }]);
  });

  it("decides nothing when nothing changes", () => {
    given(endpointDecider, [registered]).when(update({})).then([]);
  });

  it("clears a field set to null", () => {
    const events: EndpointEvent[] = [
      { type: "endpoint.registered", data: { ...base, description: "x" } },
      { type: "endpoint.updated", data: { description: null } },
    ];
    expect(fold(endpointDecider, events)).toEqual({ status: "active", ...base, circuit: closed });
  });

  it("re-enables a disabled endpoint with active: true", () => {
    const enable: EndpointEvent = { type: "endpoint.updated", data: { active: true } };
    given(endpointDecider, [registered, disabled])
      .when(update({ active: true }))
      .then([enable]);
    expect(fold(endpointDecider, [registered, disabled, enable])).toEqual({ status: "active", ...base, circuit: closed });
  });

  it("disables with active: false, by user", () => {
    const disable: EndpointEvent = { type: "endpoint.updated", data: { active: false } };
    given(endpointDecider, [registered])
      .when(update({ active: false }))
      .then([disable]);
    given(endpointDecider, [registered, disabled])
      .when(update({ active: false }))
      .then([]);
    expect(fold(endpointDecider, [registered, disable])).toEqual({
      status: "disabled",
      ...base,
      circuit: closed,
      disabledReason: "disabled by user",
    });
  });

  it("keeps a disabled endpoint disabled across other changes", () => {
    const change: EndpointEvent = { type: "endpoint.updated", data: { url: "https://example.org/" } };
    expect(fold(endpointDecider, [registered, disabled, change])).toMatchObject({
      status: "disabled",
      url: "https://example.org/",
      disabledReason: "HTTP 410 from receiver",
    });
  });

  it("refuses an invalid change", () => {
    given(endpointDecider, [registered])
      .when(update({ url: "nope" }))
      .thenThrows("unprocessable");
    given(endpointDecider, [registered])
      .when(update({ eventTypes: [] }))
      .thenThrows("unprocessable");
    given(endpointDecider, [registered])
      .when(update({ eventTypes: ["a b"] }))
      .thenThrows("unprocessable");
    given(endpointDecider, [registered])
      .when(update({ retryPolicy: { maxDelayMs: 1 } }))
      .thenThrows("unprocessable");
  });

  it("refuses to update a missing or deleted endpoint", () => {
    given(endpointDecider, [])
      .when(update({ url: base.url }))
      .thenThrows("not_found");
    given(endpointDecider, [registered, deleted])
      .when(update({ url: base.url }))
      .thenThrows("not_found");
  });
});

describe("endpoint: disable and delete", () => {
  it("disables with a reason", () => {
    given(endpointDecider, [registered]).when({ type: "DisableEndpoint", reason: "HTTP 410 from receiver" }).then([disabled]);
    expect(fold(endpointDecider, [registered, disabled])).toEqual({
      status: "disabled",
      ...base,
      circuit: closed,
      disabledReason: "HTTP 410 from receiver",
    });
  });

  it("disabling a disabled endpoint changes nothing", () => {
    given(endpointDecider, [registered, disabled]).when({ type: "DisableEndpoint", reason: "again" }).then([]);
  });

  it("refuses to disable a missing or deleted endpoint", () => {
    given(endpointDecider, []).when({ type: "DisableEndpoint", reason: "x" }).thenThrows("not_found");
    given(endpointDecider, [registered, deleted]).when({ type: "DisableEndpoint", reason: "x" }).thenThrows("not_found");
  });

  it("deletes an active or disabled endpoint, keeping its record", () => {
    given(endpointDecider, [registered]).when({ type: "DeleteEndpoint" }).then([deleted]);
    given(endpointDecider, [registered, disabled]).when({ type: "DeleteEndpoint" }).then([deleted]);
    expect(fold(endpointDecider, [registered, deleted])).toEqual({ status: "deleted", ...base, circuit: closed });
  });

  it("refuses to delete a missing or deleted endpoint", () => {
    given(endpointDecider, []).when({ type: "DeleteEndpoint" }).thenThrows("not_found");
    given(endpointDecider, [registered, deleted]).when({ type: "DeleteEndpoint" }).thenThrows("not_found");
  });
});

describe("endpoint: test sends", () => {
  const sent = { webhookId: "msg_test_1", eventType: "a.b", status: 204, latencyMs: 9 };

  it("records a test send to an active or disabled endpoint, changing nothing of it", () => {
    given(endpointDecider, [registered])
      .when({ type: "RecordTestSend", ...sent })
      .then([{ type: "endpoint.test_sent", data: sent }]);
    given(endpointDecider, [registered, disabled])
      .when({ type: "RecordTestSend", ...sent })
      .then([{ type: "endpoint.test_sent", data: sent }]);
    expect(fold(endpointDecider, [registered, { type: "endpoint.test_sent", data: sent }])).toEqual(fold(endpointDecider, [registered]));
  });

  it("refuses a test send to a missing or deleted endpoint", () => {
    given(endpointDecider, [])
      .when({ type: "RecordTestSend", ...sent })
      .thenThrows("not_found");
    given(endpointDecider, [registered, deleted])
      .when({ type: "RecordTestSend", ...sent })
      .thenThrows("not_found");
  });
});

describe("endpoint: effective policies", () => {
  it("falls back to the defaults", () => {
    expect(effectiveRetryPolicy({})).toEqual(DEFAULT_RETRY_POLICY);
    expect(effectiveDeliveryPolicy({})).toEqual(DEFAULT_DELIVERY_POLICY);
    // API.md: deliveryPolicy.timeoutMs defaults to 15000.
    expect(effectiveDeliveryPolicy({}).timeoutMs).toBe(15_000);
    expect(effectiveDeliveryPolicy({ deliveryPolicy: {} }).timeoutMs).toBe(15_000);
  });

  it("lays partial overrides over the defaults", () => {
    expect(effectiveRetryPolicy({ retryPolicy: { maxAttempts: 2, factor: undefined } })).toEqual({
      ...DEFAULT_RETRY_POLICY,
      maxAttempts: 2,
    });
    expect(effectiveDeliveryPolicy({ deliveryPolicy: { timeoutMs: 500 } })).toEqual({ timeoutMs: 500 });
  });
});

describe("endpoint: weak secrets", () => {
  // whsec_==================== decodes to an empty key: anyone could sign for it.
  it.each([
    { base64: 0, text: 26 },
    { base64: 15, text: 26 },
  ])("refuses to register with a key under 16 bytes (%o)", (secretKeyBytes) => {
    given(endpointDecider, [])
      .when({ ...register, secretKeyBytes } as EndpointCommand)
      .thenThrows("unprocessable");
  });

  it("registers with a key of exactly 16 bytes", () => {
    given(endpointDecider, [])
      .when({ ...register, secretKeyBytes: { base64: 16, text: 28 } } as EndpointCommand)
      .then([registered]);
  });
});

describe("endpoint: rotate secret", () => {
  const next = "enc:v1:k1:bmV3c2VjcmV0";
  const now = "2025-03-01T12:00:00.000Z";
  const rotate = (graceSeconds: number, secretKeyBytes = strong): EndpointCommand => ({ type: "RotateSecret", secret: next, secretKeyBytes, graceSeconds, now });
  const rotated: EndpointEvent = { type: "endpoint.secret_rotated", data: { secret: next, previousExpiresAt: "2025-03-02T12:00:00.000Z" } };

  it("records the new encrypted secret and when the old one stops signing (time from the command)", () => {
    given(endpointDecider, [registered]).when(rotate(DEFAULT_ROTATION_GRACE_SECONDS)).then([rotated]);
    given(endpointDecider, [registered, disabled])
      .when(rotate(0))
      .then([{ type: "endpoint.secret_rotated", data: { secret: next, previousExpiresAt: now } }]);
  });

  it("keeps the old secret in state beside the new one, and signs with both only until the grace ends", () => {
    const state = fold(endpointDecider, [registered, rotated]);
    expect(state).toMatchObject({ status: "active", secret: next, previousSecret: { secret, expiresAt: "2025-03-02T12:00:00.000Z" } });
    if (state.status !== "active") throw new Error("unreachable");
    expect(signingSecrets(state, new Date("2025-03-02T11:59:59.999Z"))).toEqual([next, secret]);
    expect(signingSecrets(state, new Date("2025-03-02T12:00:00.000Z"))).toEqual([next]);
    expect(signingSecrets(fold(endpointDecider, [registered]) as typeof state, new Date(now))).toEqual([secret]);
  });

  it("a second rotation replaces the older previous secret: two secrets at most", () => {
    const third = "enc:v1:k1:dGhpcmQ=";
    const again: EndpointEvent = { type: "endpoint.secret_rotated", data: { secret: third, previousExpiresAt: "2025-03-03T00:00:00.000Z" } };
    expect(fold(endpointDecider, [registered, rotated, again])).toMatchObject({ secret: third, previousSecret: { secret: next } });
  });

  it.each([
    ["a plain-text secret", { secret: "whsec_abcdefghijklmnopqrstuvwxyz" }],
    ["a negative grace", { graceSeconds: -1 }],
    ["a grace over 7 days", { graceSeconds: MAX_ROTATION_GRACE_SECONDS + 1 }],
    ["a fractional grace", { graceSeconds: 1.5 }],
    ["an invalid time", { now: "yesterday" }],
    ["a new key under 16 bytes", { secretKeyBytes: { base64: 15, text: 26 } }],
  ])("refuses %s", (_, override) => {
    given(endpointDecider, [registered])
      .when({ ...rotate(60), ...override } as EndpointCommand)
      .thenThrows("unprocessable");
  });

  it("refuses a missing or deleted endpoint", () => {
    given(endpointDecider, []).when(rotate(60)).thenThrows("not_found");
    given(endpointDecider, [registered, deleted]).when(rotate(60)).thenThrows("not_found");
  });
});
