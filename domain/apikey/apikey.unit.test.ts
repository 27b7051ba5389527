import { describe, expect, it } from "vitest";
import { fold } from "../decider.js";
import { given } from "../testing/given.js";
import { apiKeyDecider, type ApiKeyEvent } from "./apikey.js";

const key = { name: "ci", scopes: ["ingest" as const], keyHash: "ab".repeat(32), keyPrefix: "zk_abcd" };
const created: ApiKeyEvent = { type: "apikey.created", data: key };
const revoked: ApiKeyEvent = { type: "apikey.revoked", data: {} };

describe("api key", () => {
  it("creates a key from its hash", () => {
    given(apiKeyDecider, [])
      .when({ type: "CreateApiKey", ...key })
      .then([created]);
  });

  it("refuses to create a key twice", () => {
    given(apiKeyDecider, [created]).when({ type: "CreateApiKey", ...key }).thenThrows("conflict");
  });

  it("revokes an active key", () => {
    given(apiKeyDecider, [created]).when({ type: "RevokeApiKey" }).then([revoked]);
  });

  it("revoking a revoked key changes nothing", () => {
    given(apiKeyDecider, [created, revoked]).when({ type: "RevokeApiKey" }).then([]);
  });

  it("refuses to revoke a key that does not exist", () => {
    given(apiKeyDecider, []).when({ type: "RevokeApiKey" }).thenThrows("not_found");
  });

  it("keeps the record once revoked", () => {
    expect(fold(apiKeyDecider, [created, revoked])).toEqual({ status: "revoked", ...key });
  });
});
