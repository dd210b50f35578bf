import { describe, expect, it } from "vitest";
import type { AggregateResponse } from "../../api/models";
import {
  alignEnvelopes,
  emptyEnvelope,
  envelopesFromAggregate,
  mergeEnvelope,
  minMaxDecimate,
  type Envelope,
} from "./downsample";

const t0 = Date.UTC(2024, 0, 1) / 1000;
const iso = (s: number) => new Date((t0 + s) * 1000).toISOString();

function response(bucketMs: number, series: Record<string, [number, number, number, number][]>): AggregateResponse {
  return {
    bucket_ms: bucketMs,
    source: "raw",
    value: "raw",
    from: iso(0),
    to: iso(600),
    origin: iso(0),
    series: Object.entries(series).map(([sensor_id, buckets]) => ({
      sensor_id,
      buckets: buckets.map(([s, avg, min, max]) => ({
        t: iso(s),
        count: 1,
        avg,
        min,
        max,
        first: min,
        last: max,
      })),
    })),
  };
}

function envelope(width: number, columns: [number, number, number, number][]): Envelope {
  const e = emptyEnvelope();
  for (const [x, avg, min, max] of columns) {
    e.xs.push(x);
    e.avg.push(avg);
    e.min.push(min);
    e.max.push(max);
    e.widths.push(width * 1000);
  }
  return e;
}

describe("envelopesFromAggregate", () => {
  it("gives one envelope per requested sensor, in order, empty when it has no buckets", () => {
    const [a, b, c] = envelopesFromAggregate(
      response(60_000, { s2: [[0, 20, 19, 21]], s1: [[0, 1, 0, 2], [60, 3, 2, 9]] }),
      ["s1", "s2", "s3"],
    );
    expect(a!.xs).toEqual([t0, t0 + 60]);
    expect(a!.max).toEqual([2, 9]);
    expect(a!.widths).toEqual([60_000, 60_000]);
    expect(b!.avg).toEqual([20]);
    expect(c!.xs).toEqual([]);
  });
});

describe("mergeEnvelope", () => {
  const coarse = envelope(100, [
    [0, 1, 0, 2],
    [100, 5, 1, 50],
    [200, 3, 2, 4],
    [300, 6, 5, 7],
  ]);

  it("replaces the coarse columns overlapping the zoomed range with the finer ones", () => {
    const fine = envelope(10, [
      [150, 4, 3, 5],
      [160, 40, 1, 50],
      [170, 2, 1, 3],
    ]);
    const merged = mergeEnvelope(coarse, fine, 150, 250);
    // [100,200) and [200,300) overlap [150,250): both go; the detail comes in between.
    expect(merged.xs).toEqual([0, 150, 160, 170, 300]);
    expect(merged.max).toEqual([2, 5, 50, 3, 7]);
    expect(merged.widths).toEqual([100_000, 10_000, 10_000, 10_000, 100_000]);
  });

  it("keeps the extremes of the detail (a spike stays visible after merging)", () => {
    const fine = envelope(1, [[120, 0, -99, 99]]);
    const merged = mergeEnvelope(coarse, fine, 100, 200);
    expect(Math.max(...(merged.max as number[]))).toBe(99);
    expect(Math.min(...(merged.min as number[]))).toBe(-99);
  });

  it("ignores detail outside the range and leaves an empty base alone", () => {
    const fine = envelope(10, [[50, 1, 1, 1], [500, 1, 1, 1]]);
    expect(mergeEnvelope(coarse, fine, 100, 200).xs).toEqual([0, 200, 300]);
    expect(mergeEnvelope(emptyEnvelope(), fine, 0, 100).xs).toEqual([50]);
  });
});

describe("alignEnvelopes", () => {
  it("puts avg, min and max of each sensor on one x axis", () => {
    const a = envelope(10, [[0, 1, 0, 2], [10, 2, 1, 3]]);
    const b = envelope(10, [[10, 20, 19, 21]]);
    expect(alignEnvelopes([a, b])).toEqual([
      [0, 10],
      [1, 2],
      [0, 1],
      [2, 3],
      [null, 20],
      [null, 19],
      [null, 21],
    ]);
  });
});

describe("minMaxDecimate", () => {
  it("keeps each bucket's lowest and highest point in x order", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const ys = xs.map((x) => (x === 37 ? 1000 : x === 71 ? -1000 : 0));
    const out = minMaxDecimate(xs, ys, 10);
    expect(out.xs.length).toBeLessThanOrEqual(20);
    expect(out.ys).toContain(1000);
    expect(out.ys).toContain(-1000);
    for (let i = 1; i < out.xs.length; i++) expect(out.xs[i]!).toBeGreaterThan(out.xs[i - 1]!);
  });

  it("returns short series unchanged and skips nulls", () => {
    expect(minMaxDecimate([1, 2], [3, null], 5)).toEqual({ xs: [1, 2], ys: [3, null] });
    const xs = Array.from({ length: 40 }, (_, i) => i);
    const ys = xs.map((x) => (x < 20 ? null : x));
    const out = minMaxDecimate(xs, ys, 4);
    expect(out.ys.every((v) => v !== null)).toBe(true);
    expect(out.xs[0]).toBe(20);
  });
});
