// Downsampled history: the api's min/max/avg buckets per sensor as chart envelopes, the merge
// of a finer read of a zoomed range into the coarse overview (so zooming out keeps the detail
// already fetched), and a client-side min/max decimation for long raw series.
import type { AggregateResponse } from "../../api/models";
import type { Aligned } from "./chartData";

/** One sensor's buckets as columns; x in seconds, ascending. */
export interface Envelope {
  xs: number[];
  avg: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
  /** The bucket width (ms) each column stands for. */
  widths: number[];
}

export function emptyEnvelope(): Envelope {
  return { xs: [], avg: [], min: [], max: [], widths: [] };
}

/** Envelopes of the sensors in `sensorIds` order (a sensor without buckets gets an empty one). */
export function envelopesFromAggregate(
  response: AggregateResponse,
  sensorIds: readonly string[],
): Envelope[] {
  const bySensor = new Map(response.series.map((s) => [s.sensor_id, s.buckets]));
  return sensorIds.map((sensorId) => {
    const envelope = emptyEnvelope();
    for (const bucket of bySensor.get(sensorId) ?? []) {
      const t = Date.parse(bucket.t);
      if (Number.isNaN(t)) continue;
      envelope.xs.push(t / 1000);
      envelope.avg.push(bucket.avg);
      envelope.min.push(bucket.min);
      envelope.max.push(bucket.max);
      envelope.widths.push(response.bucket_ms);
    }
    return envelope;
  });
}

/**
 * The overview with the columns inside [from, to) (seconds) replaced by the finer `detail`
 * read of that range. Coarse columns that overlap the range are dropped; columns outside stay.
 */
export function mergeEnvelope(base: Envelope, detail: Envelope, from: number, to: number): Envelope {
  const out = emptyEnvelope();
  const push = (e: Envelope, i: number) => {
    out.xs.push(e.xs[i]!);
    out.avg.push(e.avg[i]!);
    out.min.push(e.min[i]!);
    out.max.push(e.max[i]!);
    out.widths.push(e.widths[i]!);
  };
  let i = 0;
  // Base columns that end before the range starts.
  while (i < base.xs.length && base.xs[i]! + base.widths[i]! / 1000 <= from) push(base, i++);
  // Skip base columns that overlap [from, to).
  while (i < base.xs.length && base.xs[i]! < to) i++;
  for (let j = 0; j < detail.xs.length; j++) {
    const x = detail.xs[j]!;
    if (x >= from && x < to) push(detail, j);
  }
  while (i < base.xs.length) push(base, i++);
  return out;
}

/** Envelopes on one x axis: `[xs, avg1, min1, max1, avg2, min2, max2, …]`. */
export function alignEnvelopes(envelopes: readonly Envelope[]): Aligned {
  const times = new Set<number>();
  for (const e of envelopes) for (const x of e.xs) times.add(x);
  const xs = [...times].sort((a, b) => a - b);
  const column = new Map<number, number>();
  xs.forEach((x, i) => column.set(x, i));
  const series: (number | null)[][] = [];
  for (const e of envelopes) {
    const avg: (number | null)[] = new Array(xs.length).fill(null);
    const min: (number | null)[] = new Array(xs.length).fill(null);
    const max: (number | null)[] = new Array(xs.length).fill(null);
    e.xs.forEach((x, i) => {
      const c = column.get(x)!;
      avg[c] = e.avg[i]!;
      min[c] = e.min[i]!;
      max[c] = e.max[i]!;
    });
    series.push(avg, min, max);
  }
  return [xs, ...series];
}

/**
 * Min/max decimation of a sorted raw series into at most `buckets` × 2 points: each bucket of
 * equal x width keeps its lowest and highest point, in x order, so spikes survive.
 */
export function minMaxDecimate(
  xs: ArrayLike<number>,
  ys: ArrayLike<number | null>,
  buckets: number,
): { xs: number[]; ys: (number | null)[] } {
  const n = xs.length;
  if (n <= buckets * 2 || buckets < 1) {
    return { xs: Array.from(xs), ys: Array.from(ys) };
  }
  const x0 = xs[0]!;
  const span = xs[n - 1]! - x0 || 1;
  const outX: number[] = [];
  const outY: (number | null)[] = [];
  let i = 0;
  for (let b = 0; b < buckets; b++) {
    const end = b === buckets - 1 ? Infinity : x0 + (span * (b + 1)) / buckets;
    let lo = -1;
    let hi = -1;
    for (; i < n && xs[i]! < end; i++) {
      const v = ys[i];
      if (v === null || v === undefined) continue;
      if (lo < 0 || v < ys[lo]!) lo = i;
      if (hi < 0 || v > ys[hi]!) hi = i;
    }
    if (lo < 0) continue;
    const [a, c] = lo <= hi ? [lo, hi] : [hi, lo];
    outX.push(xs[a]!);
    outY.push(ys[a]!);
    if (c !== a) {
      outX.push(xs[c]!);
      outY.push(ys[c]!);
    }
  }
  return { xs: outX, ys: outY };
}
