// React glue for live data: a LiveHub per screen fed by the SSE stream (with a history
// prefill so a chart does not start empty), and LiveChart, a chart the hub re-feeds.
import { useEffect, useRef, useSyncExternalStore } from "react";
import { backend } from "../api/endpoints";
import type { ValueKind } from "../api/models";
import type { CaptureBand } from "../components/charts/captureBands";
import { Chart, type ChartHandle, type ChartSeries } from "../components/charts/Chart";
import { LiveHub, type LiveTarget, type LiveView, type StreamOpener } from "./liveHub";
import { LiveStreamClient } from "./liveStream";

/** The real stream: SSE with resume by last event id (LiveStreamClient). */
export const sseOpener: StreamOpener = (target, value, onPoints, onState, onDropped) => {
  const client = new LiveStreamClient({
    url: (lastEventId) =>
      backend.telemetry.streamUrl({
        sensor_ids: target.sensorIds ? [...target.sensorIds] : undefined,
        run_id: target.runId,
        capture_session_id: target.sessionId,
        value,
        last_event_id: lastEventId ?? undefined,
      }),
    onPoints,
    onState,
    onDropped,
  });
  client.start();
  return () => client.stop();
};

const PAGE_LIMIT = 10_000;

/**
 * Reads stored points of the target between `fromMs` and now into the hub (at most `pages`
 * pages); the rings drop what they already hold (same timestamp). Returns the points read.
 */
async function readInto(
  hub: LiveHub,
  target: LiveTarget,
  value: ValueKind,
  fromMs: number,
  pages: number,
  signal: AbortSignal,
): Promise<number> {
  let cursor: string | null = null;
  let read = 0;
  for (let page = 0; page < pages; page++) {
    const answer = await backend.telemetry.history({
      sensor_ids: target.sensorIds ? [...target.sensorIds] : undefined,
      run_id: target.runId,
      capture_session_id: target.sessionId,
      from: new Date(fromMs).toISOString(),
      value,
      limit: PAGE_LIMIT,
      cursor,
    });
    if (signal.aborted) return read;
    const bySensor = new Map<string, [number, number | null][]>();
    for (const point of answer.items) {
      const t = Date.parse(point.ts);
      if (Number.isNaN(t)) continue;
      let list = bySensor.get(point.sensor_id);
      if (!list) bySensor.set(point.sensor_id, (list = []));
      list.push([t, point.value]);
    }
    for (const [sensorId, points] of bySensor) hub.ingest(sensorId, points);
    read += answer.items.length;
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return read;
}

/** How far back a gap repair reads, before the first coalesced point was reported. */
const REPAIR_MARGIN_MS = 10_000;
/** Repairs wait for this quiet time after the last report, but run at least this often. */
const REPAIR_DEBOUNCE_MS = 1500;
const REPAIR_MAX_WAIT_MS = 5000;

/**
 * When the server coalesces points for a slow client (ADR 0007), the chart misses them; this
 * re-reads the affected span from history once the burst is over (or every few seconds while
 * it lasts). Returns a function that cancels pending repairs.
 */
export function repairGaps(
  hub: LiveHub,
  read: (fromMs: number, signal: AbortSignal) => Promise<number>,
): () => void {
  let since: number | null = null;
  let first = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const abort = new AbortController();
  const run = async () => {
    timer = null;
    if (since === null) return;
    const from = since;
    since = null;
    try {
      const points = await read(from, abort.signal);
      hub.stats.repairs++;
      hub.stats.repairedPoints += points;
    } catch {
      // the next report tries again
    }
  };
  hub.onDropped = () => {
    const now = Date.now();
    if (since === null) {
      since = now - REPAIR_MARGIN_MS;
      first = now;
    }
    if (timer) clearTimeout(timer);
    const wait = Math.max(0, Math.min(REPAIR_DEBOUNCE_MS, first + REPAIR_MAX_WAIT_MS - now));
    timer = setTimeout(() => void run(), wait);
  };
  return () => {
    abort.abort();
    if (timer) clearTimeout(timer);
    hub.onDropped = null;
  };
}

/**
 * A hub that streams `target` while `enabled`. The hub lives as long as the component; the
 * stream follows the target and the value kind.
 */
export function useLiveHub(
  target: LiveTarget | null,
  value: ValueKind,
  options: { enabled?: boolean; windowMs?: number; capacity?: number; frameMs?: number; open?: StreamOpener } = {},
): LiveHub {
  const hubRef = useRef<LiveHub | null>(null);
  if (!hubRef.current) {
    hubRef.current = new LiveHub({
      open: options.open ?? sseOpener,
      windowMs: options.windowMs,
      capacity: options.capacity,
      frameMs: options.frameMs,
    });
  }
  const hub = hubRef.current;
  const enabled = options.enabled ?? true;
  const key = target ? JSON.stringify([target.sensorIds, target.runId, target.sessionId]) : "";
  useEffect(() => {
    if (!enabled || !target || (target.sensorIds && target.sensorIds.length === 0 && !target.runId && !target.sessionId)) {
      hub.disconnect();
      return;
    }
    hub.connect(target, value);
    const abort = new AbortController();
    // The stream carries only points stored from now on; the window before comes from history.
    void readInto(hub, target, value, Date.now() - hub.windowMs, 1, abort.signal).catch(() => undefined);
    const stopRepairs = repairGaps(hub, (from, signal) => readInto(hub, target, value, from, 20, signal));
    return () => {
      abort.abort();
      stopRepairs();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hub, key, value, enabled]);
  useEffect(() => () => hub.dispose(), [hub]);
  return hub;
}

/** The hub's stream state and pause flag, re-rendering on change. */
export function useHubState(hub: LiveHub) {
  const state = useSyncExternalStore(hub.subscribe, () => hub.state);
  const paused = useSyncExternalStore(hub.subscribe, () => hub.paused);
  return { state, paused };
}

/** A chart of some of the hub's sensors, re-fed by the hub (never re-rendered by React for data). */
export function LiveChart({
  hub,
  sensorIds,
  series,
  height = 220,
  bands,
  testId,
  ariaLabel,
}: {
  hub: LiveHub;
  sensorIds: readonly string[];
  series: ChartSeries[];
  height?: number;
  bands?: readonly CaptureBand[];
  testId?: string;
  ariaLabel: string;
}) {
  const chart = useRef<ChartHandle>(null);
  const ids = sensorIds.join(",");
  const layout = JSON.stringify(series);
  useEffect(() => {
    const view: LiveView = {
      sensorIds: ids ? ids.split(",") : [],
      render: (data) => chart.current?.setData(data),
    };
    return hub.register(view);
  }, [hub, ids, layout]);
  return (
    <Chart
      ref={chart}
      series={series}
      height={height}
      bands={bands}
      testId={testId}
      ariaLabel={ariaLabel}
      emptyText="Waiting for points…"
    />
  );
}
