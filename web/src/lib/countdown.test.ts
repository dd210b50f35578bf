import { afterEach, describe, expect, it, vi } from "vitest";
import { Countdown, formatClock, parseDuration, remainingSeconds } from "./countdown";

describe("parseDuration", () => {
  it.each([
    ["90", 90],
    ["90s", 90],
    ["2m", 120],
    ["2 min", 120],
    ["1m30s", 90],
    ["1h", 3600],
    ["1h 5m", 3900],
    ["1:30", 90],
    ["1:02:03", 3723],
  ])("%s → %d s", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "0", "abc", "1:75", "-5", "5x", "1.5"])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe("remainingSeconds and formatClock", () => {
  it("rounds up and never goes below zero", () => {
    expect(remainingSeconds(10_000, 8_500)).toBe(2);
    expect(remainingSeconds(10_000, 10_000)).toBe(0);
    expect(remainingSeconds(10_000, 12_000)).toBe(0);
  });

  it("formats minutes and hours", () => {
    expect(formatClock(9)).toBe("0:09");
    expect(formatClock(75)).toBe("1:15");
    expect(formatClock(3725)).toBe("1:02:05");
  });
});

describe("Countdown", () => {
  afterEach(() => vi.useRealTimers());

  it("ticks every second and expires exactly once", () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const ticks: number[] = [];
    const onExpire = vi.fn();
    const countdown = new Countdown({ deadlineMs: 3000, onTick: (s) => ticks.push(s), onExpire });
    countdown.start();
    vi.advanceTimersByTime(5000);
    expect(ticks).toEqual([3, 2, 1, 0]);
    expect(onExpire).toHaveBeenCalledTimes(1);
    expect(countdown.expired).toBe(true);
  });

  it("expires at once when its timer fires late (a throttled background tab)", () => {
    let now = 0;
    const timers: (() => void)[] = [];
    const onExpire = vi.fn();
    const countdown = new Countdown({
      deadlineMs: 10_000,
      onTick: () => undefined,
      onExpire,
      now: () => now,
      setTimer: (fn) => timers.push(fn),
      clearTimer: () => undefined,
    });
    countdown.start();
    now = 60_000; // the tab slept for a minute
    timers.shift()!();
    expect(onExpire).toHaveBeenCalledTimes(1);
    expect(timers).toHaveLength(0);
  });

  it("does nothing after stop", () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const onExpire = vi.fn();
    const countdown = new Countdown({ deadlineMs: 2000, onTick: () => undefined, onExpire });
    countdown.start();
    countdown.stop();
    vi.advanceTimersByTime(5000);
    expect(onExpire).not.toHaveBeenCalled();
  });

  it("expires immediately when the deadline has passed", () => {
    const onExpire = vi.fn();
    new Countdown({ deadlineMs: 0, onTick: () => undefined, onExpire, now: () => 5 }).start();
    expect(onExpire).toHaveBeenCalledTimes(1);
  });
});
