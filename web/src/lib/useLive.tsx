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
export const sseOpener: StreamOpener = (target, value, onPoints, onState) => {
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
  });
  client.start();
  return () => client.stop();
};

const PREFILL_LIMIT = 10_000;

/** Reads the last `windowMs` of stored points into the hub (the stream carries only new ones). */
async function prefill(hub: LiveHub, target: LiveTarget, value: ValueKind, signal: AbortSignal): Promise<void> {
  const from = new Date(Date.now() - hub.windowMs).toISOString();
  try {
    const page = await backend.telemetry.history({
      sensor_ids: target.sensorIds ? [...target.sensorIds] : undefined,
      run_id: target.runId,
      capture_session_id: target.sessionId,
      from,
      value,
      limit: PREFILL_LIMIT,
    });
    if (signal.aborted) return;
    const bySensor = new Map<string, [number, number | null][]>();
    for (const point of page.items) {
      const t = Date.parse(point.ts);
      if (Number.isNaN(t)) continue;
      let list = bySensor.get(point.sensor_id);
      if (!list) bySensor.set(point.sensor_id, (list = []));
      list.push([t, point.value]);
    }
    for (const [sensorId, points] of bySensor) hub.ingest(sensorId, points);
  } catch {
    // the live stream still works; the chart just starts with what arrives
  }
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
    void prefill(hub, target, value, abort.signal);
    return () => abort.abort();
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
  return <Chart ref={chart} series={series} height={height} bands={bands} testId={testId} ariaLabel={ariaLabel} />;
}
