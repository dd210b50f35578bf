import { describe, expect, it } from "vitest";
import type { AuditEvent } from "../api/models";
import { describeAuditEvent, describeUserAgent, formatDelta, formatDuration, formatNumber, initials, relativeTime } from "./format";

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe("relativeTime", () => {
  it("reads naturally in the past and the future", () => {
    expect(relativeTime(ago(10), NOW)).toBe("just now");
    expect(relativeTime(ago(5 * 60), NOW)).toBe("5 min ago");
    expect(relativeTime(ago(3 * 3600), NOW)).toBe("3 h ago");
    expect(relativeTime(ago(2 * 86_400), NOW)).toBe("2 d ago");
    expect(relativeTime(ago(-4 * 86_400), NOW)).toBe("in 4 d");
    expect(relativeTime(null, NOW)).toBe("never");
  });
});

describe("describeUserAgent", () => {
  it("names common browsers and systems", () => {
    expect(
      describeUserAgent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
      ),
    ).toBe("Chrome on Linux");
    expect(describeUserAgent("Mozilla/5.0 (Windows NT 10.0; rv:121.0) Gecko/20100101 Firefox/121.0")).toBe(
      "Firefox on Windows",
    );
    expect(describeUserAgent(null)).toBe("Unknown client");
  });
});

describe("describeAuditEvent", () => {
  const event = (overrides: Partial<AuditEvent>): AuditEvent => ({
    id: 1,
    project_id: "p",
    actor_id: "u1",
    actor_role: "owner",
    action: "project.created",
    entity_type: "project",
    entity_id: "p",
    before: null,
    after: null,
    request_id: "r",
    created_at: ago(0),
    ...overrides,
  });

  it("describes member changes with names", () => {
    expect(
      describeAuditEvent(event({ action: "member.added", after: { email: "b@x.org", role: "viewer" } })),
    ).toBe("added b@x.org as viewer");
    expect(
      describeAuditEvent(
        event({
          action: "member.role_changed",
          entity_id: "u2",
          before: { role: "viewer" },
          after: { role: "editor" },
        }),
        { u2: "Bea" },
      ),
    ).toBe("changed Bea’s role from viewer to editor");
  });

  it("falls back to the action for unknown events", () => {
    expect(
      describeAuditEvent(event({ action: "sensor.calibrated", entity_type: "sensor", entity_id: "abcdef123456" })),
    ).toBe("calibrated sensor abcdef12");
    expect(describeAuditEvent(event({ action: "sensor.token_rotated", entity_type: "sensor" }))).toBe(
      "rotated a sensor's token",
    );
  });
});

describe("initials", () => {
  it("takes the first and last word", () => {
    expect(initials("Ada King Lovelace")).toBe("AL");
    expect(initials("ada")).toBe("A");
    expect(initials("  ")).toBe("?");
  });
});

describe("numbers, durations and deltas", () => {
  it("formats numbers compactly", () => {
    expect(formatNumber(1200)).toBe("1,200");
    expect(formatNumber(3.14159265)).toBe("3.14159");
    expect(formatNumber(0.00001234)).toBe("1.234e-5");
    expect(formatNumber(null)).toBe("—");
  });

  it("formats durations", () => {
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(125)).toBe("2 min 5 s");
    expect(formatDuration(7260)).toBe("2 h 1 min");
    expect(formatDuration(null)).toBe("—");
  });

  it("formats signed deltas with percentages", () => {
    expect(formatDelta(0.5, 10)).toBe("+0.5 (+10.0 %)");
    expect(formatDelta(-2, -50)).toBe("−2 (−50.0 %)");
    expect(formatDelta(0)).toBe("±0");
  });
});
