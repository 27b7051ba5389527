import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_PROCESS_LAYOUT, loadConfig, parseProcessLayout } from "./config.js";

describe("configuration from the environment", () => {
  it("runs every role on local defaults with nothing set", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      natsUrl: "nats://127.0.0.1:4222",
      databaseUrl: "postgres://postgres@127.0.0.1:5432/zen_webhooks",
      streamPrefix: "zen",
      roles: ["api", "router", "dispatcher", "projector", "replayer"],
      allowPrivateTargets: false,
    });
  });

  it("reads previous master keys and the redaction allowlist as comma-separated lists", () => {
    expect(loadConfig({})).toMatchObject({ masterKeysPrevious: [], redactAllow: [] });
    const config = loadConfig({ ZEN_MASTER_KEYS_PREVIOUS: " aa , bb,", ZEN_REDACT_ALLOW: "support@zen.dev, 192.0.2.1" });
    expect(config.masterKeysPrevious).toEqual(["aa", "bb"]);
    expect(config.redactAllow).toEqual(["support@zen.dev", "192.0.2.1"]);
  });

  it("picks roles and flags", () => {
    const config = loadConfig({ ZEN_ROLES: "api, dispatcher", ZEN_ALLOW_PRIVATE_TARGETS: "true" });
    expect(config.roles).toEqual(["api", "dispatcher"]);
    expect(config.allowPrivateTargets).toBe(true);
  });

  it("has no ops server unless ZEN_OPS_PORT is set", () => {
    expect(loadConfig({}).opsPort).toBeUndefined();
    expect(loadConfig({ ZEN_OPS_PORT: "" }).opsPort).toBeUndefined();
    expect(loadConfig({ ZEN_OPS_PORT: "9464" }).opsPort).toBe(9464);
    expect(loadConfig({ ZEN_OPS_PORT: "0" }).opsPort).toBe(0);
  });

  it.each([
    [{ ZEN_ROLES: "api,bogus" }, /ZEN_ROLES/],
    [{ PORT: "eighty" }, /PORT/],
    [{ ZEN_OPS_PORT: "70000" }, /ZEN_OPS_PORT/],
    [{ NODE_ENV: "production" }, /ZEN_MASTER_KEY/],
    [{ NODE_ENV: "production", ZEN_MASTER_KEY: "a".repeat(64), ZEN_ADMIN_TOKEN: "change-me-admin-token" }, /ZEN_ADMIN_TOKEN must be at least 32/],
  ])("refuses %o with a one-line reason", (env, reason) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(reason);
  });

  it("accepts a long operator token in production", () => {
    expect(loadConfig({ NODE_ENV: "production", ZEN_MASTER_KEY: "a".repeat(64), ZEN_ADMIN_TOKEN: "t".repeat(32) }).adminToken).toBe("t".repeat(32));
  });
});

describe("ZEN_PROCESSES, the layout npm start runs without ZEN_ROLES", () => {
  it("parses groups of roles separated by ';', spaces allowed", () => {
    expect(parseProcessLayout(" api ; router, dispatcher ,replayer;projector ")).toEqual([["api"], ["router", "dispatcher", "replayer"], ["projector"]]);
  });

  it("defaults to the api, the delivery roles and the projector, each role once", () => {
    expect(loadConfig({}).processes).toEqual([["api"], ["router", "dispatcher", "replayer"], ["projector"]]);
    expect(parseProcessLayout(DEFAULT_PROCESS_LAYOUT).flat().sort()).toEqual(["api", "dispatcher", "projector", "replayer", "router"]);
  });

  it("refuses an unknown role, a role in two groups, and an empty layout", () => {
    expect(() => parseProcessLayout("api;nonsense")).toThrow(ConfigError);
    expect(() => parseProcessLayout("api,router;router")).toThrow(/each role at most once/);
    expect(() => parseProcessLayout(" ; ")).toThrow(ConfigError);
  });
});
