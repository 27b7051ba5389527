import { describe, it } from "vitest";
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
