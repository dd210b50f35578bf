import { describe, expect, it } from "vitest";
import type { Comparison, OverlaySeries } from "../../api/models";
import { differsFromBaseline, overlayGroups } from "./compareData";

function series(run: string, sensor: string, buckets: [number, number][]): OverlaySeries {
  return {
    run_id: run,
    capture_session_id: `${run}-s`,
    session_ordinal: 1,
    session_status: "succeeded",
    sensor_id: sensor,
    sensor_name: sensor,
    unit: "Pa",
    source: "raw",
    profile_versions: [],
    buckets: buckets.map(([offset_s, avg]) => ({ offset_s, avg, min: avg, max: avg, count: 1 })),
  };
}

describe("overlayGroups", () => {
  it("aligns each sensor's sessions on the offset since their start", () => {
    const comparison = {
      telemetry: {
        value: "physical",
        max_points: 100,
        bucket_ms: 1000,
        duration_s: 3,
        sessions_total: 2,
        truncated: false,
        series: [series("r1", "p1", [[0, 1], [1, 2]]), series("r2", "p1", [[1, 20], [2, 30]]), series("r1", "t1", [[0, 5]])],
      },
    } as unknown as Comparison;
    const groups = overlayGroups(comparison);
    expect(groups.map((g) => g.sensorName)).toEqual(["p1", "t1"]);
    expect(groups[0]!.data).toEqual([
      [0, 1, 2],
      [1, 2, null],
      [null, 20, 30],
    ]);
  });

  it("is empty without telemetry", () => {
    expect(overlayGroups({ telemetry: null } as unknown as Comparison)).toEqual([]);
  });
});

describe("differsFromBaseline", () => {
  it("compares values, treating a missing key as null", () => {
    expect(differsFromBaseline({ a: 1, b: 1 }, "b", "a")).toBe(false);
    expect(differsFromBaseline({ a: 1, b: 2 }, "b", "a")).toBe(true);
    expect(differsFromBaseline({ a: 1 }, "b", "a")).toBe(true);
  });
});
