import { describe, expect, it } from "vitest";
import type { LivePointsEvent } from "../api/models";
import type { Aligned } from "../components/charts/chartData";
import { LiveHub, type StreamOpener } from "./liveHub";

function harness(frameMs = 100) {
  let now = 0;
  const timers: { fn: () => void; at: number }[] = [];
  let push: ((event: LivePointsEvent) => void) | null = null;
  const opened: unknown[] = [];
  let closed = 0;
  const open: StreamOpener = (target, value, onPoints) => {
    opened.push({ target, value });
    push = onPoints;
    return () => closed++;
  };
  const hub = new LiveHub({
    capacity: 100,
    windowMs: 10_000,
    frameMs,
    open,
    now: () => now,
    schedule: (fn, ms) => timers.push({ fn, at: now + ms }),
    cancel: () => undefined,
  });
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.splice(0).filter((t) => t.at <= now)) t.fn();
  };
  return { hub, advance, send: (e: LivePointsEvent) => push!(e), opened, closed: () => closed };
}

const event = (sensor: string, ...ms: number[]): LivePointsEvent => ({
  sensor_id: sensor,
  points: ms.map((t) => [t * 1000, t / 1000, null, "ok"]),
  seq: 1,
});

describe("LiveHub", () => {
  it("batches incoming points into one render per frame, per view", () => {
    const { hub, advance, send } = harness();
    const renders: Aligned[] = [];
    hub.connect({ sensorIds: ["a"] }, "raw");
    hub.register({ sensorIds: ["a"], render: (d) => renders.push(d) });
    expect(renders).toHaveLength(1); // registered: rendered at once (empty)
    send(event("a", 1000));
    send(event("a", 2000, 3000));
    advance(100);
    expect(renders).toHaveLength(2);
    expect(Array.from(renders[1]![0])).toEqual([1, 2, 3]);
    expect(hub.stats.points).toBe(3);
  });

  it("renders only the views whose sensors changed", () => {
    const { hub, advance, send } = harness();
    let a = 0;
    let b = 0;
    hub.connect({ sensorIds: ["a", "b"] }, "raw");
    hub.register({ sensorIds: ["a"], render: () => a++ });
    hub.register({ sensorIds: ["b"], render: () => b++ });
    send(event("a", 1000));
    advance(100);
    expect([a, b]).toEqual([2, 1]);
  });

  it("keeps buffering while paused and catches up on resume", () => {
    const { hub, advance, send } = harness();
    const renders: Aligned[] = [];
    hub.connect({ sensorIds: ["a"] }, "raw");
    hub.register({ sensorIds: ["a"], render: (d) => renders.push(d) });
    hub.pause();
    send(event("a", 1000, 2000));
    advance(500);
    expect(renders).toHaveLength(1);
    hub.resume();
    advance(100);
    expect(renders).toHaveLength(2);
    expect(renders[1]![0].length).toBe(2);
  });

  it("drops points outside the time window", () => {
    const { hub, advance, send } = harness();
    const renders: Aligned[] = [];
    hub.connect({ sensorIds: ["a"] }, "raw");
    hub.register({ sensorIds: ["a"], render: (d) => renders.push(d) });
    send(event("a", 1000, 5000, 20_000));
    advance(100);
    expect(Array.from(renders.at(-1)![0])).toEqual([20]);
  });

  it("reopens the stream and forgets old points when the value kind changes", () => {
    const { hub, send, opened, closed } = harness();
    hub.connect({ sensorIds: ["a"] }, "raw");
    hub.connect({ sensorIds: ["a"] }, "raw"); // same target: nothing happens
    send(event("a", 1000));
    hub.connect({ sensorIds: ["a"] }, "physical");
    expect(opened).toHaveLength(2);
    expect(closed()).toBe(1);
    expect(hub.ring("a").length).toBe(0);
  });
});
