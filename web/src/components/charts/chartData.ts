// Shaping time series for uPlot: one shared x axis (seconds), one y array per series, nulls
// where a series has no value. Pure functions, so the chart stays a thin wrapper.

/** A point in epoch milliseconds. */
export interface Point {
  t: number;
  v: number | null;
}

export interface SeriesInput {
  id: string;
  points: readonly Point[];
}

/** uPlot's aligned layout: `[xs, ys1, ys2, …]`, xs ascending, in seconds. */
export type Aligned = [number[], ...(number | null)[][]];

/** ISO timestamps and values from the api into points (invalid timestamps are dropped). */
export function toPoints(items: readonly { ts: string; value: number | null }[]): Point[] {
  const points: Point[] = [];
  for (const item of items) {
    const t = Date.parse(item.ts);
    if (!Number.isNaN(t)) points.push({ t, v: item.value });
  }
  return points;
}

/**
 * Aligns several series on the union of their timestamps. Input need not be sorted; within one
 * series the last point at a timestamp wins (a retried batch re-sends the same timestamps).
 */
export function alignSeries(series: readonly SeriesInput[]): Aligned {
  const times = new Set<number>();
  for (const s of series) for (const p of s.points) times.add(p.t);
  const sortedMs = [...times].sort((a, b) => a - b);
  const column = new Map<number, number>();
  sortedMs.forEach((t, index) => column.set(t, index));
  const ys = series.map((s) => {
    const values: (number | null)[] = new Array(sortedMs.length).fill(null);
    for (const p of s.points) values[column.get(p.t)!] = finiteOrNull(p.v);
    return values;
  });
  return [sortedMs.map((t) => t / 1000), ...ys];
}

/**
 * Appends live columns and keeps at most `maxPoints` columns (oldest dropped). Columns that
 * arrive in order are appended without re-sorting; late or duplicate ones trigger a merge.
 */
export function appendColumns(data: Aligned, incoming: Aligned, maxPoints: number): Aligned {
  const [xs, ...ys] = data;
  const [newXs, ...newYs] = incoming;
  if (newYs.length !== ys.length) {
    throw new Error(`series count differs: have ${ys.length}, got ${newYs.length}`);
  }
  if (newXs.length === 0) return data;
  const last = xs.length ? xs[xs.length - 1]! : -Infinity;
  let inOrder = newXs[0]! > last;
  for (let i = 1; inOrder && i < newXs.length; i++) inOrder = newXs[i]! > newXs[i - 1]!;
  let merged: Aligned;
  if (inOrder) {
    merged = [xs.concat(newXs), ...ys.map((y, i) => y.concat(newYs[i]!))];
  } else {
    const series = ys.map((y, i) => ({
      id: String(i),
      points: [
        ...xs.flatMap((x, j) => (y[j] === null ? [] : [{ t: Math.round(x * 1000), v: y[j]! }])),
        ...newXs.flatMap((x, j) =>
          newYs[i]![j] === null ? [] : [{ t: Math.round(x * 1000), v: newYs[i]![j]! }],
        ),
      ],
    }));
    merged = alignSeries(series);
  }
  const excess = merged[0].length - maxPoints;
  if (excess <= 0) return merged;
  const [mx, ...my] = merged;
  return [mx.slice(excess), ...my.map((y) => y.slice(excess))];
}

/** The smallest and largest finite y over all series, or null when there is none. */
export function valueRange(data: Aligned): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (let s = 1; s < data.length; s++) {
    for (const v of data[s]!) {
      if (v === null) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return min === Infinity ? null : { min, max };
}

function finiteOrNull(value: number | null): number | null {
  return value !== null && Number.isFinite(value) ? value : null;
}
