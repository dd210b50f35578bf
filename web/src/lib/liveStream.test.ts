import { describe, expect, it } from "vitest";
import type { LivePointsEvent } from "../api/models";
import { LiveStreamClient, backoffDelay, type EventSourceLike, type StreamState } from "./liveStream";

type Listener = (event: MessageEvent | Event) => void;

class FakeSource implements EventSourceLike {
  readyState = 0;
  closed = false;
  listeners = new Map<string, Listener[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data?: unknown, lastEventId = ""): void {
    const event =
      data === undefined
        ? ({ type } as Event)
        : ({ type, data: JSON.stringify(data), lastEventId } as unknown as MessageEvent);
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

function setup() {
  const sources: FakeSource[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const received: LivePointsEvent[] = [];
  const states: StreamState[] = [];
  const client = new LiveStreamClient({
    url: (last) => `/stream?sensor_ids=a${last ? `&last_event_id=${last}` : ""}`,
    onPoints: (event) => received.push(event),
    onState: (state) => states.push(state),
    factory: (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    },
    initialDelayMs: 100,
    maxDelayMs: 1000,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => undefined,
  });
  return { client, sources, timers, received, states };
}

const points = (seq: number): LivePointsEvent => ({ sensor_id: "a", points: [[seq * 1000, seq, null, "ok"]], seq });

describe("backoffDelay", () => {
  it("doubles up to the cap", () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => backoffDelay(n, 100, 1000))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe("LiveStreamClient", () => {
  it("delivers points and resumes from the last event id after an error", () => {
    const { client, sources, timers, received, states } = setup();
    client.start();
    expect(sources[0]!.url).toBe("/stream?sensor_ids=a");
    sources[0]!.emit("ready", { sensor_ids: ["a"] }, "c0");
    expect(states.at(-1)?.kind).toBe("live");
    sources[0]!.emit("points", points(1), "c1");
    sources[0]!.emit("points", points(2), "c2");
    expect(received.map((e) => e.seq)).toEqual([1, 2]);

    sources[0]!.emit("error"); // the connection broke
    expect(sources[0]!.closed).toBe(true);
    expect(states.at(-1)).toEqual({ kind: "reconnecting", attempt: 1, inMs: 100 });
    timers.shift()!.fn();
    expect(sources[1]!.url).toBe("/stream?sensor_ids=a&last_event_id=c2");
    expect(client.lastEventId).toBe("c2");
  });

  it("skips events it already delivered and keeps only the new ones", () => {
    const { client, sources, timers, received } = setup();
    client.start();
    sources[0]!.emit("points", points(1), "c1");
    sources[0]!.emit("error");
    timers.shift()!.fn();
    sources[1]!.emit("points", points(1), "c1");
    sources[1]!.emit("points", points(2), "c2");
    expect(received.map((e) => e.seq)).toEqual([1, 2]);
    expect(client.duplicates).toBe(1);
  });

  it("backs off on repeated failures and resets after a successful open", () => {
    const { client, sources, timers } = setup();
    client.start();
    sources[0]!.emit("error");
    timers.shift()!.fn();
    sources[1]!.emit("error");
    expect(timers.at(-1)!.ms).toBe(200);
    timers.shift()!.fn();
    sources[2]!.emit("ready", {}, "c");
    sources[2]!.emit("error");
    expect(timers.at(-1)!.ms).toBe(100);
  });

  it("stops for good when the server ends the stream because access was revoked", () => {
    const { client, sources, timers, states } = setup();
    client.start();
    sources[0]!.emit("error", { code: "access_revoked" });
    expect(timers).toHaveLength(0);
    expect(states.at(-1)).toEqual({ kind: "ended", code: "access_revoked" });
    expect(sources[0]!.closed).toBe(true);
  });

  it("reconnects at once-ish after a too_slow end, and ignores a closed source's events", () => {
    const { client, sources, timers, received } = setup();
    client.start();
    sources[0]!.emit("error", { code: "too_slow" });
    expect(timers).toHaveLength(1);
    sources[0]!.emit("points", points(5), "c5"); // late event of the closed source
    expect(received).toHaveLength(0);
    client.stop();
    timers.shift()!.fn();
    expect(sources).toHaveLength(1); // stopped: no new connection
  });
});
