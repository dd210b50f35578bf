import { describe, expect, it } from "vitest";
import type { CaptureSession } from "../../api/models";
import { captureBands, visibleBands } from "./captureBands";

function session(ordinal: number, status: CaptureSession["status"], start: string | null, stop: string | null): CaptureSession {
  return {
    id: `s${ordinal}`,
    run_id: "r",
    project_id: "p",
    ordinal,
    status,
    previous_status: null,
    started_at: start,
    stopped_at: stop,
    duration_seconds: null,
    notes: "",
    summary: null,
    failure_reason: null,
    created_by: null,
    created_at: start ?? "2024-01-01T00:00:00Z",
    updated_at: start ?? "2024-01-01T00:00:00Z",
  };
}

describe("captureBands", () => {
  it("makes one band per started session, a running one reaching now", () => {
    const now = Date.parse("2024-01-01T00:10:00Z");
    const bands = captureBands(
      [
        session(2, "running", "2024-01-01T00:05:00Z", null),
        session(1, "succeeded", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
        session(3, "draft", null, null),
      ],
      now,
    );
    expect(bands.map((b) => [b.label, b.to - b.from])).toEqual([
      ["#1 succeeded", 60],
      ["#2 running", 300],
    ]);
  });

  it("clips bands to the visible range and leaves out those outside", () => {
    const bands = [
      { id: "a", from: 0, to: 10, status: "succeeded" as const, label: "a" },
      { id: "b", from: 20, to: 30, status: "failed" as const, label: "b" },
    ];
    expect(visibleBands(bands, 5, 15)).toEqual([{ ...bands[0], from: 5, to: 10 }]);
  });
});
