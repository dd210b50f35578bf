// The capture duration: parsing what people type, showing what is left, and a countdown that
// ticks on whole seconds and expires exactly once, however late its timers fire (a background
// tab throttles them).

/** "90", "90s", "2m", "1m30s", "1h", "1:30", "1:02:03" → seconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (!value) return null;
  if (/^\d+$/.test(value)) return positive(Number(value));
  if (/^\d+(:\d{1,2}){1,2}$/.test(value)) {
    const parts = value.split(":").map(Number);
    if (parts.slice(1).some((p) => p >= 60)) return null;
    return positive(parts.reduce((total, part) => total * 60 + part, 0));
  }
  const match = /^(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s(?:ec)?)?$/.exec(value);
  if (!match || !(match[1] || match[2] || match[3])) return null;
  const [, h = "0", m = "0", s = "0"] = match;
  return positive(Number(h) * 3600 + Number(m) * 60 + Number(s));
}

function positive(seconds: number): number | null {
  return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
}

/** Whole seconds left until `deadlineMs` (rounded up, never negative). */
export function remainingSeconds(deadlineMs: number, nowMs: number): number {
  return Math.max(0, Math.ceil((deadlineMs - nowMs) / 1000));
}

/** 75 → "1:15", 3725 → "1:02:05", 9 → "0:09". */
export function formatClock(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export interface CountdownOptions {
  deadlineMs: number;
  onTick: (secondsLeft: number) => void;
  onExpire: () => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** Ticks once per whole second until the deadline, then calls `onExpire` once. */
export class Countdown {
  private handle: unknown = null;
  private done = false;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly options: CountdownOptions) {
    this.now = options.now ?? (() => Date.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  get expired(): boolean {
    return this.done;
  }

  start(): void {
    this.tick();
  }

  stop(): void {
    if (this.handle !== null) this.clearTimer(this.handle);
    this.handle = null;
  }

  private tick = (): void => {
    this.handle = null;
    if (this.done) return;
    const left = this.options.deadlineMs - this.now();
    if (left <= 0) {
      this.done = true;
      this.options.onTick(0);
      this.options.onExpire();
      return;
    }
    this.options.onTick(Math.ceil(left / 1000));
    // Wake at the next whole-second boundary of the time left (at least 20 ms later).
    const next = left % 1000 || 1000;
    this.handle = this.setTimer(this.tick, Math.max(20, next));
  };
}
