// The run's telemetry with its capture timeline: live (SSE of the run) while a session runs,
// the stored history (downsampled, zoomable) otherwise.
import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import type { CaptureSession, RunSensor, ValueKind } from "../../api/models";
import { captureBands, BAND_COLOURS } from "../../components/charts/captureBands";
import { colourAt } from "../../components/charts/Chart";
import { HistoryChart } from "../../components/charts/HistoryChart";
import { ChartIcon, PulseIcon } from "../../components/icons";
import { EmptyState } from "../../components/ui";
import { useNow } from "../../lib/hooks";
import { LiveChart, useHubState, useLiveHub } from "../../lib/useLive";
import { StreamBadge, ValueToggle } from "../live/controls";

export function RunTelemetry({
  runId,
  sessions,
  sensors,
}: {
  runId: string;
  sessions: CaptureSession[];
  sensors: RunSensor[];
}) {
  const [value, setValue] = useState<ValueKind>("physical");
  const running = sessions.find((s) => s.status === "running") ?? null;
  const now = useNow(running ? 2000 : 60_000);
  const bands = useMemo(() => captureBands(sessions, now), [sessions, now]);
  const started = sessions.some((s) => s.started_at);
  const hub = useLiveHub(running ? { runId } : null, value, { enabled: Boolean(running), windowMs: 10 * 60_000 });
  const { state } = useHubState(hub);
  const meta = sensors.map((s) => ({ id: s.id, name: s.name, unit: s.display_unit || s.input_unit }));
  const series = useMemo(
    () => meta.map((s, i) => ({ label: s.name, unit: s.unit, color: colourAt(i) })),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [JSON.stringify(meta)],
  );

  return (
    <section className="card" aria-labelledby="telemetry-title">
      <div className="card-header">
        <div>
          <h2 id="telemetry-title">Telemetry</h2>
          <p className="muted small">Capture sessions are drawn as bands behind the data.</p>
        </div>
        <div className="actions-row">
          {running && <StreamBadge state={state} />}
          <ValueToggle value={value} onChange={setValue} />
          {sensors.length > 0 && (
            <Link className="btn btn-sm" to={`/live?sensors=${sensors.map((s) => s.id).join(",")}`}>
              <PulseIcon />
              Live viewer
            </Link>
          )}
        </div>
      </div>
      <div className="card-body">
        {sensors.length === 0 ? (
          <EmptyState icon={<ChartIcon />} title="No sensors attached">
            Attach sensors to the run to capture and chart their data.
          </EmptyState>
        ) : running ? (
          <LiveChart hub={hub} sensorIds={meta.map((s) => s.id)} series={series} height={260} bands={bands} testId="run-live-chart" ariaLabel="Live telemetry of the run" />
        ) : started ? (
          <HistoryChart sensors={meta} scope={{ runId }} value={value} bands={bands} testId="run-history-chart" />
        ) : (
          <EmptyState icon={<ChartIcon />} title="Nothing captured yet">
            Start a capture: the attached sensors' data appears here live.
          </EmptyState>
        )}
        {bands.length > 0 && (
          <div className="band-legend" aria-label="Capture timeline legend">
            {(["running", "succeeded", "failed", "backfilling"] as const).map((status) => (
              <span key={status}>
                <span className="swatch" style={{ background: `rgb(${BAND_COLOURS[status]})` }} />
                {status}
              </span>
            ))}
          </div>
        )}
      </div>
    </section>
  );
}
