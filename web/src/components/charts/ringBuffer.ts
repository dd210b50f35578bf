// Live chart data: one fixed-size ring of (time, value) per sensor, kept in time order, and the
// merge of several rings into uPlot's aligned layout. Appends in time order cost O(1); a late
// point is inserted in place (O(n), rare); a point at a time already held replaces it (a
// retried batch re-sends the same timestamps). When full, the oldest point is dropped.
import type { Aligned } from "./chartData";

export class TimeRing {
  readonly capacity: number;
  private readonly ts: Float64Array;
  private readonly vs: Float64Array; // NaN stands for "no value" (a missing physical value)
  private start = 0;
  private count = 0;
  /** Grows on every change, so a renderer can skip rings that did not change. */
  version = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error("capacity must be ≥ 1");
    this.capacity = capacity;
    this.ts = new Float64Array(capacity);
    this.vs = new Float64Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  private slot(index: number): number {
    return (this.start + index) % this.capacity;
  }

  /** Time (ms) of the point at logical index `index` (0 = oldest). */
  timeAt(index: number): number {
    return this.ts[this.slot(index)]!;
  }

  valueAt(index: number): number | null {
    const v = this.vs[this.slot(index)]!;
    return Number.isNaN(v) ? null : v;
  }

  get firstTime(): number | null {
    return this.count ? this.timeAt(0) : null;
  }

  get lastTime(): number | null {
    return this.count ? this.timeAt(this.count - 1) : null;
  }

  get lastValue(): number | null {
    return this.count ? this.valueAt(this.count - 1) : null;
  }

  /** Adds one point (t in ms); returns false when it was dropped (older than a full ring). */
  push(t: number, value: number | null): boolean {
    if (!Number.isFinite(t)) return false;
    const v = value === null || !Number.isFinite(value) ? Number.NaN : value;
    const last = this.lastTime;
    if (last === null || t > last) {
      this.appendLast(t, v);
      return true;
    }
    const at = this.lowerBound(t);
    if (at < this.count && this.timeAt(at) === t) {
      this.vs[this.slot(at)] = v; // same timestamp: the newer value wins
      this.version++;
      return true;
    }
    if (this.count === this.capacity) {
      if (at === 0) return false; // older than everything kept
      this.dropOldest(1);
      return this.insertAt(at - 1, t, v);
    }
    return this.insertAt(at, t, v);
  }

  pushMany(points: Iterable<readonly [number, number | null]>): number {
    let kept = 0;
    for (const [t, v] of points) if (this.push(t, v)) kept++;
    return kept;
  }

  /** Drops every point older than `t` (ms). */
  trimBefore(t: number): void {
    let drop = 0;
    while (drop < this.count && this.timeAt(drop) < t) drop++;
    if (drop) this.dropOldest(drop);
  }

  clear(): void {
    this.start = 0;
    this.count = 0;
    this.version++;
  }

  /** Times in seconds (uPlot's x) and values, oldest first. */
  toColumns(): { xs: Float64Array; ys: (number | null)[] } {
    const xs = new Float64Array(this.count);
    const ys: (number | null)[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) {
      const s = this.slot(i);
      xs[i] = this.ts[s]! / 1000;
      const v = this.vs[s]!;
      ys[i] = Number.isNaN(v) ? null : v;
    }
    return { xs, ys };
  }

  private appendLast(t: number, v: number): void {
    if (this.count === this.capacity) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    const s = this.slot(this.count);
    this.ts[s] = t;
    this.vs[s] = v;
    this.count++;
    this.version++;
  }

  private insertAt(index: number, t: number, v: number): boolean {
    for (let i = this.count; i > index; i--) {
      const to = this.slot(i);
      const from = this.slot(i - 1);
      this.ts[to] = this.ts[from]!;
      this.vs[to] = this.vs[from]!;
    }
    const s = this.slot(index);
    this.ts[s] = t;
    this.vs[s] = v;
    this.count++;
    this.version++;
    return true;
  }

  private dropOldest(n: number): void {
    const k = Math.min(n, this.count);
    this.start = (this.start + k) % this.capacity;
    this.count -= k;
    this.version++;
  }

  /** The first logical index whose time is ≥ t. */
  private lowerBound(t: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timeAt(mid) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Several rings on one shared x axis (seconds): a k-way merge of their sorted times, nulls where
 * a ring has no point at a time. One ring needs no merge: its columns are used as they are.
 */
export function alignRings(rings: readonly TimeRing[]): Aligned {
  if (rings.length === 0) return [[]];
  if (rings.length === 1) {
    const { xs, ys } = rings[0]!.toColumns();
    return [xs as unknown as number[], ys];
  }
  const cursors = rings.map(() => 0);
  const total = rings.reduce((sum, r) => sum + r.length, 0);
  const xs: number[] = [];
  const ys: (number | null)[][] = rings.map(() => []);
  xs.length = 0;
  for (let emitted = 0; emitted < total; ) {
    let t = Infinity;
    for (let r = 0; r < rings.length; r++) {
      const c = cursors[r]!;
      if (c < rings[r]!.length) t = Math.min(t, rings[r]!.timeAt(c));
    }
    xs.push(t / 1000);
    for (let r = 0; r < rings.length; r++) {
      const ring = rings[r]!;
      const c = cursors[r]!;
      if (c < ring.length && ring.timeAt(c) === t) {
        ys[r]!.push(ring.valueAt(c));
        cursors[r] = c + 1;
        emitted++;
      } else {
        ys[r]!.push(null);
      }
    }
  }
  return [xs, ...ys];
}
