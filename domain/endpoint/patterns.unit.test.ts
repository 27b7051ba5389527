import { describe, expect, it } from "vitest";
import { describeMatch, isValidEventTypePattern, matchesEventType } from "./patterns.js";

describe("event-type patterns", () => {
  it.each(["*", "invoice.*", "invoice.paid.*", "invoice", "invoice.paid", "user_v2.created-x", "a".repeat(200)])("accepts %s", (p) =>
    expect(isValidEventTypePattern(p)).toBe(true),
  );

  it.each(["", "**", "*.paid", "invoice.", ".invoice", "invoice..paid", "invoice.*.paid", "inv oice", "invoice.**", "a".repeat(201)])("refuses %j", (p) =>
    expect(isValidEventTypePattern(p)).toBe(false),
  );

  it("* matches everything", () => {
    expect(matchesEventType("*", "user.created")).toBe(true);
    expect(matchesEventType("*", "x")).toBe(true);
  });

  it("prefix.* matches every type below the prefix, at any depth, but not the prefix itself", () => {
    expect(matchesEventType("invoice.*", "invoice.paid")).toBe(true);
    expect(matchesEventType("invoice.*", "invoice.paid.v2")).toBe(true);
    expect(matchesEventType("invoice.*", "invoice")).toBe(false);
    expect(matchesEventType("invoice.*", "invoices.paid")).toBe(false);
    expect(matchesEventType("invoice.*", "user.invoice.paid")).toBe(false);
  });

  it("anything else matches exactly", () => {
    expect(matchesEventType("invoice.paid", "invoice.paid")).toBe(true);
    expect(matchesEventType("invoice.paid", "invoice.paid.v2")).toBe(false);
    expect(matchesEventType("invoice.paid", "Invoice.paid")).toBe(false);
  });

  it("describes the first matching pattern", () => {
    expect(describeMatch(["user.*", "invoice.*", "*"], "invoice.paid")).toEqual({
      matched: true,
      reason: 'pattern "invoice.*" matches',
    });
  });

  it("says when no pattern matches", () => {
    expect(describeMatch(["invoice.*"], "user.created")).toEqual({
      matched: false,
      reason: 'no pattern matches "user.created"',
    });
    expect(describeMatch([], "user.created").matched).toBe(false);
  });
});
