// The live data of a screen: one SSE stream for every sensor on it (browsers allow few
// connections per host, so 20 panels must not mean 20 streams), a ring buffer per sensor, and
// charts ("views") that are re-fed at most once per frame interval, only when their data changed.
import type { LivePointsEvent, ValueKind } from "../api/models";
import type { Aligned } from "../components/charts/chartData";
import { TimeRing, alignRings } from "../components/charts/ringBuffer";
import type { StreamState } from "./liveStream";

export interface LiveView {
  sensorIds: readonly string[];
  render: (data: Aligned) => void;
}

export interface LiveTarget {
  sensorIds?: readonly string[];
  runId?: string;
  sessionId?: string;
}

/** Opens the stream for a target; returns a function that closes it. */
export type StreamOpener = (
  target: LiveTarget,
  value: ValueKind,
  onPoints: (event: LivePointsEvent) => void,
  onState: (state: StreamState) => void,
  onDropped?: (count: number) => void,
) => () => void;

export interface LiveHubOptions {
  /** Points kept per sensor. */
  capacity?: number;
  /** Points older than this (ms) behind a sensor's newest are dropped. */
  windowMs?: number;
  /** The shortest interval between two renders of a view (ms). */
  frameMs?: number;
  open?: StreamOpener;
  schedule?: (fn: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
  now?: () => number;
}

interface ViewEntry {
  view: LiveView;
  seen: string; // the ring versions it last rendered
}

export interface HubStats {
  points: number;
  events: number;
  renders: number;
  /** Time spent in the last flush and the slowest one (ms): data shaping plus the charts' setData. */
  lastFlushMs: number;
  maxFlushMs: number;
  totalFlushMs: number;
  flushes: number;
  /** Arrival time minus the newest point's timestamp, per stream event (ms; the last 5,000). */
  lagMs: number[];
  /** Points the server coalesced away because this client fell behind (ADR 0007). */
  dropped: number;
  /** History reads that filled those gaps, and the points they brought. */
  repairs: number;
  repairedPoints: number;
}

const LAG_SAMPLES = 5000;

export class LiveHub {
  readonly rings = new Map<string, TimeRing>();
  private views = new Set<ViewEntry>();
  private listeners = new Set<() => void>();
  private closeStream: (() => void) | null = null;
  private timer: unknown = null;
  private lastFlush = 0;
  private targetKey = "";
  state: StreamState = { kind: "stopped" };
  paused = false;
  readonly stats: HubStats = {
    points: 0,
    events: 0,
    renders: 0,
    lastFlushMs: 0,
    maxFlushMs: 0,
    totalFlushMs: 0,
    flushes: 0,
    lagMs: [],
    dropped: 0,
    repairs: 0,
    repairedPoints: 0,
  };
  /** Called when the server reports coalesced points (the owner fills the gap from history). */
  onDropped: ((count: number) => void) | null = null;
  readonly capacity: number;
  windowMs: number;
  readonly frameMs: number;
  private readonly schedule: (fn: () => void, ms: number) => unknown;
  private readonly cancel: (handle: unknown) => void;
  private readonly now: () => number;

  constructor(private readonly options: LiveHubOptions = {}) {
    this.capacity = options.capacity ?? 10_000;
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.frameMs = options.frameMs ?? 100;
    this.schedule = options.schedule ?? ((fn, ms) => setTimeout(fn, ms));
    this.cancel = options.cancel ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.now = options.now ?? (() => performance.now());
  }

  /** Subscribes to state changes (stream state, pause); returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private emit(): void {
    for (const listener of this.listeners) listener();
  }

  ring(sensorId: string): TimeRing {
    let ring = this.rings.get(sensorId);
    if (!ring) {
      ring = new TimeRing(this.capacity);
      this.rings.set(sensorId, ring);
    }
    return ring;
  }

  /**
   * Streams `target` with `value`; a new target or value reopens the stream and forgets the
   * buffered points (another value kind means other numbers).
   */
  connect(target: LiveTarget, value: ValueKind): void {
    const key = JSON.stringify([target.sensorIds ? [...target.sensorIds].sort() : null, target.runId, target.sessionId, value]);
    if (key === this.targetKey && this.closeStream) return;
    this.disconnect();
    this.targetKey = key;
    for (const ring of this.rings.values()) ring.clear();
    const open = this.options.open;
    if (!open) return;
    this.closeStream = open(
      target,
      value,
      (event) => this.onEvent(event),
      (state) => {
        this.state = state;
        this.emit();
      },
      (count) => {
        this.stats.dropped += count;
        this.onDropped?.(count);
      },
    );
  }

  disconnect(): void {
    this.closeStream?.();
    this.closeStream = null;
    this.targetKey = "";
    this.state = { kind: "stopped" };
    this.emit();
  }

  private onEvent(event: LivePointsEvent): void {
    this.stats.events++;
    const newest = event.points[event.points.length - 1];
    if (newest) {
      const lag = Date.now() - newest[0] / 1000;
      if (this.stats.lagMs.length >= LAG_SAMPLES) this.stats.lagMs.shift();
      this.stats.lagMs.push(lag);
    }
    this.ingest(
      event.sensor_id,
      event.points.map((p) => [p[0] / 1000, p[1]] as const),
    );
  }

  /** Adds points (time in ms) of one sensor and schedules a render. */
  ingest(sensorId: string, points: readonly (readonly [number, number | null])[]): void {
    if (!points.length) return;
    const ring = this.ring(sensorId);
    ring.pushMany(points);
    const last = ring.lastTime;
    if (last !== null) ring.trimBefore(last - this.windowMs);
    this.stats.points += points.length;
    this.request();
  }

  /** Registers a chart; it is rendered at once with what is buffered. */
  register(view: LiveView): () => void {
    const entry: ViewEntry = { view, seen: "" };
    this.views.add(entry);
    this.renderView(entry);
    return () => {
      this.views.delete(entry);
    };
  }

  /** Re-renders one view now (its sensors changed). */
  refresh(view: LiveView): void {
    for (const entry of this.views) {
      if (entry.view === view) {
        entry.seen = "";
        this.renderView(entry);
      }
    }
  }

  pause(): void {
    this.paused = true;
    this.emit();
  }

  resume(): void {
    this.paused = false;
    this.emit();
    this.request();
  }

  setWindow(ms: number): void {
    this.windowMs = ms;
    for (const entry of this.views) entry.seen = "";
    this.request();
  }

  dispose(): void {
    this.disconnect();
    if (this.timer !== null) this.cancel(this.timer);
    this.timer = null;
    this.views.clear();
    this.listeners.clear();
  }

  private request(): void {
    if (this.paused || this.timer !== null) return;
    const wait = Math.max(0, this.lastFlush + this.frameMs - this.now());
    this.timer = this.schedule(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  /** Renders every view whose rings changed since its last render. */
  flush(): void {
    if (this.paused) return;
    const started = this.now();
    this.lastFlush = started;
    for (const entry of this.views) this.renderView(entry);
    const spent = this.now() - started;
    this.stats.lastFlushMs = spent;
    this.stats.maxFlushMs = Math.max(this.stats.maxFlushMs, spent);
    this.stats.totalFlushMs += spent;
    this.stats.flushes++;
  }

  private renderView(entry: ViewEntry): void {
    const rings = entry.view.sensorIds.map((id) => this.ring(id));
    const seen = rings.map((r) => r.version).join(",") + `|${this.windowMs}`;
    if (seen === entry.seen) return;
    entry.seen = seen;
    entry.view.render(alignRings(rings));
    this.stats.renders++;
  }
}
