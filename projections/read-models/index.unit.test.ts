import { describe, expect, it } from "vitest";
import { EventSchemas } from "../../contracts/events.js";
import { batchReadModels, readModels } from "./index.js";

describe("the read models", () => {
  it("project every event type but signature.rejected (never projected)", () => {
    const handled = new Set([...readModels, ...batchReadModels].flatMap((m) => m.handles as readonly string[]));
    expect(Object.keys(EventSchemas).filter((type) => !handled.has(type))).toEqual(["signature.rejected"]);
  });

  it("apply a registry event to each model that handles it, in this order", () => {
    expect(readModels.map((m) => m.name)).toEqual(["tenants", "api_keys", "endpoints", "replays", "sources", "parked_messages", "audit"]);
    expect(batchReadModels.map((m) => m.name)).toEqual(["messages", "deliveries"]);
  });

  it("leave the hot types to the batch read models alone: a registry model handling one would never see it", () => {
    const hot = new Set(batchReadModels.flatMap((m) => m.handles as readonly string[]));
    expect(readModels.flatMap((m) => m.handles.filter((type) => hot.has(type)).map((type) => `${m.name}: ${type}`))).toEqual([]);
  });
});
