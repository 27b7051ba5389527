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
