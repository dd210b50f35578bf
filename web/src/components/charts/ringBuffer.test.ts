import { describe, expect, it } from "vitest";
import { TimeRing, alignRings } from "./ringBuffer";

const times = (ring: TimeRing) => Array.from({ length: ring.length }, (_, i) => ring.timeAt(i));
const values = (ring: TimeRing) => Array.from({ length: ring.length }, (_, i) => ring.valueAt(i));

describe("TimeRing", () => {
  it("appends in order and drops the oldest point when full", () => {
    const ring = new TimeRing(3);
    for (const t of [1000, 2000, 3000, 4000]) ring.push(t, t / 1000);
    expect(times(ring)).toEqual([2000, 3000, 4000]);
    expect(values(ring)).toEqual([2, 3, 4]);
    expect(ring.lastValue).toBe(4);
    expect(ring.firstTime).toBe(2000);
  });

  it("inserts a late point in time order, also after wrapping around", () => {
    const ring = new TimeRing(4);
    for (const t of [10, 20, 30, 40, 50]) ring.push(t, t); // wraps: 20 30 40 50
    ring.push(35, 35); // full: drops 20, inserts between 30 and 40
    expect(times(ring)).toEqual([30, 35, 40, 50]);
    expect(values(ring)).toEqual([30, 35, 40, 50]);
  });

  it("drops a late point older than everything in a full ring", () => {
    const ring = new TimeRing(2);
    ring.push(10, 1);
    ring.push(20, 2);
    expect(ring.push(5, 0)).toBe(false);
    expect(times(ring)).toEqual([10, 20]);
  });

  it("replaces the value of a repeated timestamp instead of duplicating it", () => {
    const ring = new TimeRing(5);
    ring.push(10, 1);
    ring.push(20, 2);
    ring.push(10, 9);
    expect(times(ring)).toEqual([10, 20]);
    expect(values(ring)).toEqual([9, 2]);
  });

  it("keeps missing values as null and ignores non-finite times", () => {
    const ring = new TimeRing(5);
    ring.push(10, null);
    ring.push(20, Number.NaN);
    expect(ring.push(Number.NaN, 1)).toBe(false);
    expect(values(ring)).toEqual([null, null]);
  });

  it("trims points older than a time and bumps its version on every change", () => {
    const ring = new TimeRing(10);
    const v0 = ring.version;
    ring.pushMany([[1, 1], [2, 2], [3, 3]]);
    ring.trimBefore(3);
    expect(times(ring)).toEqual([3]);
    expect(ring.version).toBeGreaterThan(v0);
  });

  it("gives columns in seconds for uPlot", () => {
    const ring = new TimeRing(4);
    ring.pushMany([[1000, 1], [2000, null]]);
    const { xs, ys } = ring.toColumns();
    expect(Array.from(xs)).toEqual([1, 2]);
    expect(ys).toEqual([1, null]);
  });

  it("survives many wrap-arounds with random late points and stays sorted", () => {
    const ring = new TimeRing(64);
    let t = 0;
    for (let i = 0; i < 5000; i++) {
      t += 10;
      const late = i % 7 === 0 ? t - 35 : t; // some late points
      ring.push(late, i);
    }
    const ts = times(ring);
    expect(ts.length).toBe(64);
    for (let i = 1; i < ts.length; i++) expect(ts[i]!).toBeGreaterThan(ts[i - 1]!);
  });
});

describe("alignRings", () => {
  it("merges several rings on the union of their times with nulls", () => {
    const a = new TimeRing(10);
    const b = new TimeRing(10);
    a.pushMany([[1000, 1], [3000, 3]]);
    b.pushMany([[2000, 20], [3000, 30]]);
    expect(alignRings([a, b])).toEqual([
      [1, 2, 3],
      [1, null, 3],
      [null, 20, 30],
    ]);
  });

  it("uses a single ring's columns as they are", () => {
    const a = new TimeRing(10);
    a.pushMany([[1000, 1], [2000, 2]]);
    const [xs, ys] = alignRings([a]);
    expect(Array.from(xs)).toEqual([1, 2]);
    expect(ys).toEqual([1, 2]);
    expect(alignRings([])).toEqual([[]]);
  });
});
