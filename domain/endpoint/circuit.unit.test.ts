import { describe, expect, it } from "vitest";
import { EventSchemas } from "../../contracts/events.js";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { endpointDecider, type EndpointCommand, type EndpointEvent } from "./endpoint.js";

const secret = "enc:v1:k1:c2VjcmV0Ynl0ZXM=";
const base = { url: "https://example.com/hook", eventTypes: ["*"], secret };
const registered: EndpointEvent = { type: "endpoint.registered", data: base };
const opening = { consecutiveFailures: 5, reason: "HTTP 500 from receiver", halfOpenAt: "2025-01-01T00:01:00.000Z", failingSince: "2025-01-01T00:00:00.000Z" };
const openCircuit: EndpointCommand = { type: "OpenCircuit", ...opening };
const opened: EndpointEvent = { type: "endpoint.circuit_opened", data: opening };
const halfOpened: EndpointEvent = { type: "endpoint.circuit_half_opened", data: {} };
const closedEvent: EndpointEvent = { type: "endpoint.circuit_closed", data: {} };
const disabled: EndpointEvent = { type: "endpoint.disabled", data: { reason: "receiver answered 410 Gone" } };
const deleted: EndpointEvent = { type: "endpoint.deleted", data: {} };
const openState = { state: "open", halfOpenAt: opening.halfOpenAt, failingSince: opening.failingSince, consecutiveFailures: 5 };

describe("endpoint circuit: open", () => {
  it("opens a closed circuit", () => {
    given(endpointDecider, [registered]).when(openCircuit).then([opened]);
    expect(fold(endpointDecider, [registered, opened])).toMatchObject({ status: "active", circuit: openState });
  });

  it("re-opens a half-open circuit (a probe failed)", () => {
    const again = { ...opening, consecutiveFailures: 6, halfOpenAt: "2025-01-01T00:02:01.000Z" };
    given(endpointDecider, [registered, opened, halfOpened])
      .when({ type: "OpenCircuit", ...again })
      .then([{ type: "endpoint.circuit_opened", data: again }]);
  });

  it("is idempotent: an open circuit stays as the first opener recorded it", () => {
    given(endpointDecider, [registered, opened])
      .when({ ...openCircuit, halfOpenAt: "2025-01-01T00:05:00.000Z" })
      .then([]);
  });

  it("refuses times that are not times, and missing or deleted endpoints", () => {
    given(endpointDecider, [registered])
      .when({ ...openCircuit, halfOpenAt: "soon" })
      .thenThrows("unprocessable");
    given(endpointDecider, []).when(openCircuit).thenThrows("not_found");
    given(endpointDecider, [registered, deleted]).when(openCircuit).thenThrows("not_found");
  });
});

describe("endpoint circuit: half-open and close", () => {
  it("half-opens an open circuit, keeping the failing run", () => {
    given(endpointDecider, [registered, opened]).when({ type: "HalfOpenCircuit" }).then([halfOpened]);
    expect(fold(endpointDecider, [registered, opened, halfOpened])).toMatchObject({ circuit: { ...openState, state: "half_open" } });
  });

  it("half-opens nothing that is not open", () => {
    given(endpointDecider, [registered]).when({ type: "HalfOpenCircuit" }).then([]);
    given(endpointDecider, [registered, opened, halfOpened]).when({ type: "HalfOpenCircuit" }).then([]);
  });

  it("closes a half-open or open circuit and forgets the failing run", () => {
    given(endpointDecider, [registered, opened, halfOpened]).when({ type: "CloseCircuit" }).then([closedEvent]);
    given(endpointDecider, [registered, opened]).when({ type: "CloseCircuit" }).then([closedEvent]);
    expect(fold(endpointDecider, [registered, opened, halfOpened, closedEvent])).toMatchObject({ circuit: { state: "closed" } });
    expect(fold(endpointDecider, [registered, opened, halfOpened, closedEvent])).not.toHaveProperty("circuit.failingSince");
  });

  it("closing a closed circuit changes nothing", () => {
    given(endpointDecider, [registered]).when({ type: "CloseCircuit" }).then([]);
    given(endpointDecider, [registered, opened, closedEvent]).when({ type: "CloseCircuit" }).then([]);
  });
});

describe("endpoint circuit and health", () => {
  it("keeps the circuit on a disabled endpoint (for the record); re-enabling closes it", () => {
    expect(fold(endpointDecider, [registered, opened, disabled])).toMatchObject({ status: "disabled", circuit: openState });
    const enable: EndpointEvent = { type: "endpoint.updated", data: { active: true } };
    given(endpointDecider, [registered, opened, disabled])
      .when({ type: "UpdateEndpoint", changes: { active: true } })
      .then([enable]);
    expect(fold(endpointDecider, [registered, opened, disabled, enable])).toEqual({ status: "active", ...base, circuit: { state: "closed" } });
  });

  it("keeps the circuit across other changes", () => {
    const change: EndpointEvent = { type: "endpoint.updated", data: { description: "x" } };
    expect(fold(endpointDecider, [registered, opened, change])).toMatchObject({ description: "x", circuit: openState });
  });

  it("records a circuit opened late on a disabled endpoint", () => {
    given(endpointDecider, [registered, disabled]).when(openCircuit).then([opened]);
  });

  it("evolves every endpoint event type of the contract (the registry view folds them all)", () => {
    const samples: Record<string, EndpointEvent> = {
      "endpoint.registered": registered,
      "endpoint.updated": { type: "endpoint.updated", data: { description: "y" } },
      "endpoint.disabled": disabled,
      "endpoint.deleted": deleted,
      "endpoint.secret_rotated": { type: "endpoint.secret_rotated", data: { secret: "enc:v1:k:rotated", previousExpiresAt: "2026-01-02T00:00:00.000Z" } },
      "endpoint.circuit_opened": opened,
      "endpoint.circuit_half_opened": halfOpened,
      "endpoint.circuit_closed": closedEvent,
      "endpoint.test_sent": { type: "endpoint.test_sent", data: { webhookId: "msg_test_1", eventType: "a.b", error: "timeout", latencyMs: 1 } },
    };
    const contractTypes = Object.keys(EventSchemas).filter((type) => type.startsWith("endpoint."));
    expect(Object.keys(samples).sort()).toEqual(contractTypes.sort());
    for (const type of contractTypes) {
      expect(() => endpointDecider.evolve(fold(endpointDecider, [registered]), samples[type]!)).not.toThrow();
    }
  });
});
