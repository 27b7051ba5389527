import { describe, expect, it } from "vitest";
import { given } from "../testing/given.js";
import { tenantDecider } from "./tenant.js";

describe("tenant", () => {
  it("creates a tenant", () => {
    given(tenantDecider, [])
      .when({ type: "CreateTenant", name: "Acme" })
      .then([{ type: "tenant.created", data: { name: "Acme" } }]);
  });

  it("refuses to create a tenant twice", () => {
    given(tenantDecider, [{ type: "tenant.created", data: { name: "Acme" } }])
      .when({ type: "CreateTenant", name: "Acme" })
      .thenThrows("conflict");
  });
});

describe("tenant limits", () => {
  const created = { type: "tenant.created" as const, data: { name: "Acme" } };
  const outbound = { capacity: 10, refillPerSecond: 5 };

  it("sets a limit", () => {
    given(tenantDecider, [created])
      .when({ type: "SetLimits", outbound })
      .then([{ type: "tenant.limits_set", data: { outbound } }]);
  });

  it("records nothing when the limit is already so", () => {
    given(tenantDecider, [created, { type: "tenant.limits_set", data: { outbound } }])
      .when({ type: "SetLimits", outbound, ingress: null })
      .then([]);
  });

  it("removes a limit with null", () => {
    given(tenantDecider, [created, { type: "tenant.limits_set", data: { outbound } }])
      .when({ type: "SetLimits", outbound: null })
      .then([{ type: "tenant.limits_set", data: { outbound: null } }]);
  });

  it("refuses limits for a tenant that does not exist", () => {
    given(tenantDecider, []).when({ type: "SetLimits", outbound }).thenThrows("not_found");
  });
});

describe("tenant test sends", () => {
  const sent = { webhookId: "msg_test_1", eventType: "a.b", url: "https://example.com/h", status: 200, latencyMs: 12 };

  it("records a test send to a bare URL, and it changes nothing of the tenant", () => {
    given(tenantDecider, [{ type: "tenant.created", data: { name: "Acme" } }])
      .when({ type: "RecordTestSend", ...sent })
      .then([{ type: "tenant.test_sent", data: sent }]);
    const created = tenantDecider.evolve(tenantDecider.initialState(), { type: "tenant.created", data: { name: "Acme" } });
    expect(tenantDecider.evolve(created, { type: "tenant.test_sent", data: sent })).toEqual(created);
  });

  it("refuses a test send for a tenant that does not exist", () => {
    given(tenantDecider, [])
      .when({ type: "RecordTestSend", ...sent })
      .thenThrows("not_found");
  });
});
