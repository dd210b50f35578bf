// Stored telemetry, downsampled by the api (min/max/avg per bucket): an overview of the whole
// range, and on a drag-zoom a finer read of the visible range merged into it, so extremes stay
// visible at every zoom level and zooming out keeps what was fetched.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import type { ValueKind } from "../../api/models";
import { formatBucket, formatTime } from "../../lib/format";
import { ZoomOutIcon } from "../icons";
import type { CaptureBand } from "./captureBands";
import { Chart, colourAt, type ChartSeries } from "./Chart";
import { alignEnvelopes, envelopesFromAggregate, mergeEnvelope, type Envelope } from "./downsample";

export interface SensorMeta {
  id: string;
  name: string;
  unit?: string;
}

export interface HistoryScope {
  runId?: string;
  sessionId?: string;
  /** Explicit bounds (ms); without them a run or session gives its own window. */
  from?: number;
  to?: number;
}

const OVERVIEW_POINTS = 800;

export function HistoryChart({
  sensors,
  scope,
  value,
  bands,
  height = 260,
  testId = "history-chart",
  onRange,
}: {
  sensors: SensorMeta[];
  scope: HistoryScope;
  value: ValueKind;
  bands?: readonly CaptureBand[];
  height?: number;
  testId?: string;
  /** Tells the owner the range shown (seconds), e.g. to show it in words. */
  onRange?: (range: [number, number] | null) => void;
}) {
  const sensorIds = sensors.map((s) => s.id);
  const overview = useQuery({
    queryKey: ["telemetry", "aggregate", sensorIds, scope, value],
    queryFn: ({ signal }) =>
      backend.telemetry.aggregate(
        {
          sensor_ids: sensorIds,
          run_id: scope.runId,
          capture_session_id: scope.sessionId,
          from: scope.from ? new Date(scope.from).toISOString() : undefined,
          to: scope.to ? new Date(scope.to).toISOString() : undefined,
          value,
          max_points: OVERVIEW_POINTS,
        },
        signal,
      ),
    enabled: sensorIds.length > 0,
    meta: { silent: true },
  });
  const [envelopes, setEnvelopes] = useState<Envelope[] | null>(null);
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const [zooming, setZooming] = useState(false);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    setEnvelopes(overview.data ? envelopesFromAggregate(overview.data, sensorIds) : null);
    setZoom(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [overview.data]);

  useEffect(() => onRange?.(zoom), [zoom, onRange]);

  const onZoom = (from: number, to: number) => {
    if (!(to > from)) return;
    setZoom([from, to]);
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setZooming(true);
    backend.telemetry
      .aggregate(
        {
          sensor_ids: sensorIds,
          run_id: scope.runId,
          capture_session_id: scope.sessionId,
          from: new Date(from * 1000).toISOString(),
          to: new Date(to * 1000).toISOString(),
          value,
          max_points: OVERVIEW_POINTS,
        },
        controller.signal,
      )
      .then((detail) => {
        if (controller.signal.aborted) return;
        const fine = envelopesFromAggregate(detail, sensorIds);
        setEnvelopes((current) =>
          current ? current.map((base, i) => mergeEnvelope(base, fine[i]!, from, to)) : fine,
        );
      })
      .catch(() => undefined)
      .finally(() => {
        if (!controller.signal.aborted) setZooming(false);
      });
  };

  const series: ChartSeries[] = useMemo(
    () =>
      sensors.flatMap((sensor, i) => [
        { label: sensor.name, unit: sensor.unit, color: colourAt(i) },
        { label: `${sensor.name} min`, color: colourAt(i), faint: true },
        { label: `${sensor.name} max`, color: colourAt(i), faint: true },
      ]),
    [sensors],
  );
  const fills = useMemo(() => sensors.map((_, i) => [3 * i + 3, 3 * i + 2] as [number, number]), [sensors]);
  const data = useMemo(() => (envelopes ? alignEnvelopes(envelopes) : undefined), [envelopes]);
  const empty = data !== undefined && data[0].length === 0;

  if (sensorIds.length === 0) return <p className="muted chart-empty">Choose sensors to see their history.</p>;
  if (overview.isError) {
    return (
      <p className="alert alert-danger" role="alert">
        Could not read the history: {overview.error.message}
        {isApiError(overview.error) && overview.error.requestId ? ` (request ${overview.error.requestId})` : ""}
      </p>
    );
  }
  return (
    <div className="history-chart" data-bucket-ms={overview.data?.bucket_ms} data-source={overview.data?.source}>
      <div className="chart-toolbar">
        <span className="muted small">
          {overview.isPending
            ? "Loading…"
            : empty
              ? "No stored points in this range."
              : zoom
                ? `Zoomed to ${formatTime(zoom[0] * 1000)} – ${formatTime(zoom[1] * 1000)}${zooming ? " (loading detail…)" : ""}`
                : `Drag across the chart to zoom; buckets of ${formatBucket(overview.data?.bucket_ms)} keep each bucket's min and max.`}
        </span>
        {zoom && (
          <button type="button" className="btn btn-sm" onClick={() => setZoom(null)}>
            <ZoomOutIcon />
            Reset zoom
          </button>
        )}
      </div>
      <Chart
        series={series}
        fills={fills}
        data={data}
        height={height}
        bands={bands}
        xRange={zoom}
        onZoom={onZoom}
        testId={testId}
        ariaLabel={`History of ${sensors.map((s) => s.name).join(", ")}`}
      />
    </div>
  );
}
