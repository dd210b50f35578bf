import { describe, expect, it } from "vitest";
import { movePanel, pruneSensors, sensorUnion, shiftPanel, toggleSensor, type Panel } from "./panels";

const panels: Panel[] = [
  { id: "a", sensorIds: ["s1"] },
  { id: "b", sensorIds: ["s2", "s1"] },
  { id: "c", sensorIds: [] },
];

describe("panel layout", () => {
  it("moves a dragged panel to the drop target's place", () => {
    expect(movePanel(panels, "a", "c").map((p) => p.id)).toEqual(["b", "c", "a"]);
    expect(movePanel(panels, "c", "a").map((p) => p.id)).toEqual(["c", "a", "b"]);
    expect(movePanel(panels, "a", "zz").map((p) => p.id)).toEqual(["a", "b", "c"]);
  });

  it("shifts with the keyboard and stops at the ends", () => {
    expect(shiftPanel(panels, "b", -1).map((p) => p.id)).toEqual(["b", "a", "c"]);
    expect(shiftPanel(panels, "c", 1).map((p) => p.id)).toEqual(["a", "b", "c"]);
  });

  it("toggles sensors and streams each sensor once", () => {
    expect(toggleSensor(panels[0]!, "s3").sensorIds).toEqual(["s1", "s3"]);
    expect(toggleSensor(panels[1]!, "s2").sensorIds).toEqual(["s1"]);
    expect(sensorUnion(panels)).toEqual(["s1", "s2"]);
  });

  it("drops sensors that no longer exist", () => {
    expect(pruneSensors(panels, new Set(["s1"])).map((p) => p.sensorIds)).toEqual([["s1"], ["s1"], []]);
  });
});
