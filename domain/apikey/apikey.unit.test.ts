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
    given(apiKeyDecider, [created])
      .when({ type: "CreateApiKey", ...key })
      .thenThrows("conflict");
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

  it("records a use, later ones only, and none once revoked", () => {
    const used = (usedAt: string): ApiKeyEvent => ({ type: "apikey.used", data: { usedAt } });
    given(apiKeyDecider, [created])
      .when({ type: "RecordApiKeyUse", at: "2026-01-01T10:00:00.000Z" })
      .then([used("2026-01-01T10:00:00.000Z")]);
    given(apiKeyDecider, [created, used("2026-01-01T11:00:00.000Z")])
      .when({ type: "RecordApiKeyUse", at: "2026-01-01T10:00:00.000Z" })
      .then([]);
    given(apiKeyDecider, [created, revoked]).when({ type: "RecordApiKeyUse", at: "2026-01-01T10:00:00.000Z" }).then([]);
    given(apiKeyDecider, []).when({ type: "RecordApiKeyUse", at: "2026-01-01T10:00:00.000Z" }).thenThrows("not_found");
    expect(fold(apiKeyDecider, [created, used("2026-01-01T10:00:00.000Z")])).toEqual({ status: "active", ...key, lastUsedAt: "2026-01-01T10:00:00.000Z" });
  });
});
