// The live telemetry stream over SSE (`GET /telemetry/stream`), resumable without gaps: every
// event's id is a cursor (commit positions, ADR 0007); after a disconnect the client reopens
// with `?last_event_id=<the last id>` and the server sends what was committed meanwhile from
// the database, then goes live. The browser's own retry is not used: it cannot be told to stop
// for good (access revoked) and has no backoff.
import type { LivePointsEvent } from "../api/models";

/** The part of EventSource this client uses (a fake one in tests). */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent | Event) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

export type StreamState =
  | { kind: "connecting" }
  | { kind: "live"; since: number }
  | { kind: "reconnecting"; attempt: number; inMs: number }
  | { kind: "stopped" }
  | { kind: "ended"; code: string };

export interface LiveStreamOptions {
  /** The stream URL, with `last_event_id` when resuming. */
  url: (lastEventId: string | null) => string;
  onPoints: (event: LivePointsEvent) => void;
  onState?: (state: StreamState) => void;
  onDropped?: (count: number) => void;
  factory?: EventSourceFactory;
  /** First retry delay and its cap; the delay doubles per failed attempt. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** Server `event: error` codes after which reconnecting cannot help. */
const FINAL_CODES = new Set(["access_revoked", "not_found", "forbidden", "unauthenticated"]);

/** The retry delay after `attempt` consecutive failures (1, 2, 3 …). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
}

export class LiveStreamClient {
  private source: EventSourceLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private stopped = true;
  private lastId: string | null = null;
  private lastSeq = 0;
  private readonly factory: EventSourceFactory;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  /** Events received, and how many were skipped as already seen (after a resume). */
  received = 0;
  duplicates = 0;

  constructor(private readonly options: LiveStreamOptions) {
    this.factory =
      options.factory ?? ((url) => new EventSource(url, { withCredentials: true }) as EventSourceLike);
    this.now = options.now ?? (() => Date.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** The id of the last event received: where a reconnect resumes. */
  get lastEventId(): string | null {
    return this.lastId;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.teardown();
    this.setState({ kind: "stopped" });
  }

  private setState(state: StreamState): void {
    this.options.onState?.(state);
  }

  private teardown(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
  }

  private open(): void {
    this.teardown();
    this.setState(this.attempt ? { kind: "reconnecting", attempt: this.attempt, inMs: 0 } : { kind: "connecting" });
    const source = this.factory(this.options.url(this.lastId));
    this.source = source;
    const mine = (handler: (event: MessageEvent) => void) => (event: MessageEvent | Event) => {
      if (this.source === source && !this.stopped) handler(event as MessageEvent);
    };
    source.addEventListener(
      "ready",
      mine((event) => {
        this.remember(event);
        this.attempt = 0;
        this.setState({ kind: "live", since: this.now() });
      }),
    );
    source.addEventListener(
      "points",
      mine((event) => {
        const data = parse<LivePointsEvent>(event.data);
        if (!data) return;
        this.remember(event);
        this.received++;
        if (typeof data.seq === "number" && data.seq <= this.lastSeq) {
          this.duplicates++;
          return; // already delivered before the reconnect
        }
        if (typeof data.seq === "number") this.lastSeq = data.seq;
        this.options.onPoints(data);
        if (data.dropped) this.options.onDropped?.(data.dropped);
      }),
    );
    source.addEventListener(
      "dropped",
      mine((event) => {
        const data = parse<{ dropped: number }>(event.data);
        if (data?.dropped) this.options.onDropped?.(data.dropped);
      }),
    );
    source.addEventListener(
      "error",
      mine((event) => {
        // A server `event: error` carries data; the browser's own error event does not.
        const data = typeof event.data === "string" ? parse<{ code?: string }>(event.data) : null;
        if (data?.code && FINAL_CODES.has(data.code)) {
          this.stopped = true;
          this.teardown();
          this.setState({ kind: "ended", code: data.code });
          return;
        }
        this.scheduleReconnect();
      }),
    );
  }

  private remember(event: MessageEvent): void {
    if (event.lastEventId) this.lastId = event.lastEventId;
  }

  private scheduleReconnect(): void {
    this.teardown();
    this.attempt++;
    const delay = backoffDelay(
      this.attempt,
      this.options.initialDelayMs ?? 1000,
      this.options.maxDelayMs ?? 15_000,
    );
    this.setState({ kind: "reconnecting", attempt: this.attempt, inMs: delay });
    this.timer = this.setTimer(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, delay);
  }
}

function parse<T>(text: unknown): T | null {
  if (typeof text !== "string") return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}
