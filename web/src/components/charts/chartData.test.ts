import { describe, expect, it } from "vitest";
import { alignSeries, appendColumns, toPoints, valueRange, type Aligned } from "./chartData";

describe("alignSeries", () => {
  it("aligns series on the union of timestamps, in seconds, with nulls for gaps", () => {
    const data = alignSeries([
      { id: "a", points: [{ t: 2000, v: 2 }, { t: 1000, v: 1 }] },
      { id: "b", points: [{ t: 3000, v: 30 }, { t: 1000, v: 10 }] },
    ]);
    expect(data).toEqual([
      [1, 2, 3],
      [1, 2, null],
      [10, null, 30],
    ]);
  });

  it("keeps the last value when a timestamp repeats and drops non-finite values", () => {
    const data = alignSeries([
      { id: "a", points: [{ t: 1000, v: 1 }, { t: 1000, v: 5 }, { t: 2000, v: Number.NaN }] },
    ]);
    expect(data).toEqual([
      [1, 2],
      [5, null],
    ]);
  });

  it("returns only an empty x axis for no series", () => {
    expect(alignSeries([])).toEqual([[]]);
  });
});

describe("toPoints", () => {
  it("parses ISO timestamps with offsets and skips invalid ones", () => {
    expect(
      toPoints([
        { ts: "2024-01-01T00:00:01+00:00", value: 1.5 },
        { ts: "not a date", value: 2 },
        { ts: "2024-01-01T01:00:02+01:00", value: null },
      ]),
    ).toEqual([
      { t: Date.UTC(2024, 0, 1, 0, 0, 1), v: 1.5 },
      { t: Date.UTC(2024, 0, 1, 0, 0, 2), v: null },
    ]);
  });
});

describe("appendColumns", () => {
  const base: Aligned = [
    [1, 2, 3],
    [10, 20, 30],
  ];

  it("appends in-order columns and trims the oldest beyond maxPoints", () => {
    expect(appendColumns(base, [[4, 5], [40, 50]], 4)).toEqual([
      [2, 3, 4, 5],
      [20, 30, 40, 50],
    ]);
  });

  it("merges late and duplicate columns into order", () => {
    expect(appendColumns(base, [[2.5, 3], [25, 33]], 10)).toEqual([
      [1, 2, 2.5, 3],
      [10, 20, 25, 33],
    ]);
  });

  it("leaves the data alone when nothing arrives and refuses a different series count", () => {
    expect(appendColumns(base, [[], []], 10)).toBe(base);
    expect(() => appendColumns(base, [[4], [1], [2]], 10)).toThrow(/series count/);
  });

  it("does not mutate its input", () => {
    const copy = structuredClone(base);
    appendColumns(base, [[4], [40]], 2);
    expect(base).toEqual(copy);
  });
});

describe("valueRange", () => {
  it("spans all series and ignores nulls", () => {
    expect(valueRange([[1, 2], [null, 5], [-3, null]])).toEqual({ min: -3, max: 5 });
    expect(valueRange([[1], [null]])).toBeNull();
  });
});
