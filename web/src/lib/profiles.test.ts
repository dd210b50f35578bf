import { describe, expect, it } from "vitest";
import { buildPayload, describeProfile, profileField, type ProfileFields } from "./profiles";

const fields = (over: Partial<ProfileFields>): ProfileFields => ({
  a: "",
  b: "",
  coefficients: "",
  points: "",
  outOfRange: "clamp",
  ...over,
});

describe("buildPayload", () => {
  it("turns text into numbers and leaves the rest for the api to refuse", () => {
    expect(buildPayload("linear", fields({ a: "2", b: "-0.5" }))).toEqual({ a: 2, b: -0.5 });
    expect(buildPayload("linear", fields({ a: "two", b: "" }))).toEqual({ a: "two", b: "" });
    expect(buildPayload("polynomial", fields({ coefficients: "1, 0.5 -0.1" }))).toEqual({ coefficients: [1, 0.5, -0.1] });
    expect(buildPayload("table", fields({ points: "0, 0\n10 100\n\n20;250", outOfRange: "reject" }))).toEqual({
      points: [[0, 0], [10, 100], [20, 250]],
      out_of_range: "reject",
    });
  });
});

describe("describeProfile", () => {
  it("writes formulas people read", () => {
    expect(describeProfile("linear", { a: 2, b: -1 })).toBe("y = 2·x − 1");
    expect(describeProfile("polynomial", { coefficients: [1, 0.5, -0.1] })).toBe("y = 1 + 0.5·x − 0.1·x²");
    expect(describeProfile("polynomial", { coefficients: [0, 1] })).toBe("y = x");
    expect(describeProfile("table", { points: [[0, 0], [1, 1]], out_of_range: "clamp" })).toBe("table of 2 points (clamp outside)");
  });
});

describe("profileField", () => {
  it("maps the api's field names onto the form", () => {
    expect(profileField("points[3]")).toBe("points");
    expect(profileField("coefficients[0]")).toBe("coefficients");
    expect(profileField("out_of_range")).toBe("outOfRange");
    expect(profileField("zzz")).toBeNull();
  });
});
