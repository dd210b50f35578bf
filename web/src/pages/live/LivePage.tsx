// The live telemetry viewer: chart panels (add, remove, reorder by drag and drop or keyboard,
// sensors per panel), raw/physical values, live over one SSE stream with pause/resume, and a
// history mode with a run / capture-session selector and range zoom on downsampled data.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { backend } from "../../api/endpoints";
import type { Sensor, ValueKind } from "../../api/models";
import { SensorStatusBadge } from "../../components/bits";
import { captureBands, type CaptureBand } from "../../components/charts/captureBands";
import { colourAt } from "../../components/charts/Chart";
import { HistoryChart, type HistoryScope } from "../../components/charts/HistoryChart";
import { GripIcon, PauseIcon, PlayIcon, PlusIcon, PulseIcon, SensorIcon, TrashIcon } from "../../components/icons";
import { EmptyState, Loading, PageHeader } from "../../components/ui";
import { formatDateTime, formatDuration } from "../../lib/format";
import { lastProject, rememberProject } from "../../lib/hooks";
import type { LiveHub } from "../../lib/liveHub";
import { LiveChart, useHubState, useLiveHub } from "../../lib/useLive";
import { StreamBadge, ValueToggle } from "./controls";
import {
  loadPanels,
  movePanel,
  newPanel,
  pruneSensors,
  savePanels,
  sensorUnion,
  shiftPanel,
  toggleSensor,
  type Panel,
} from "./panels";

type Mode = "live" | "history";

declare global {
  interface Window {
    __etpLive?: import("../../lib/liveHub").HubStats;
  }
}

const WINDOWS = [
  { ms: 60_000, label: "1 min" },
  { ms: 5 * 60_000, label: "5 min" },
  { ms: 15 * 60_000, label: "15 min" },
];

const RANGES = [
  { ms: 15 * 60_000, label: "Last 15 minutes" },
  { ms: 3600_000, label: "Last hour" },
  { ms: 24 * 3600_000, label: "Last 24 hours" },
  { ms: 7 * 24 * 3600_000, label: "Last 7 days" },
];

export function LivePage() {
  const [params, setParams] = useSearchParams();
  const runParam = params.get("run");
  const sensorsParam = params.get("sensors");
  // A run (from a session's "History" link) or a sensor (from a run) tells the project.
  const run = useQuery({ queryKey: ["runs", runParam ?? ""], queryFn: () => backend.runs.get(runParam!), enabled: Boolean(runParam) });
  const firstSensor = sensorsParam?.split(",")[0];
  const sensor = useQuery({
    queryKey: ["sensors", firstSensor ?? ""],
    queryFn: () => backend.sensors.get(firstSensor!),
    enabled: Boolean(firstSensor) && !params.get("project"),
  });
  const projects = useQuery({ queryKey: ["projects", "list", "all"], queryFn: () => backend.projects.list({ limit: 200 }) });
  const projectId =
    params.get("project") ??
    run.data?.project_id ??
    sensor.data?.project_id ??
    (projects.data?.items.some((p) => p.id === lastProject()) ? lastProject() : projects.data?.items[0]?.id) ??
    null;
  const waiting = (runParam && run.isPending) || (firstSensor && !params.get("project") && sensor.isPending) || projects.isPending;

  if (waiting) return <Loading label="Loading the live viewer…" />;
  if (!projectId) {
    return (
      <div className="page">
        <PageHeader title="Live telemetry" subtitle="Watch sensor data as it arrives." />
        <div className="card">
          <EmptyState icon={<PulseIcon />} title="No project yet" action={<Link className="btn btn-primary" to="/projects">Create a project</Link>}>
            Sensors belong to projects; create one and register a sensor first.
          </EmptyState>
        </div>
      </div>
    );
  }
  return (
    <Viewer
      key={projectId}
      projectId={projectId}
      projects={projects.data?.items ?? []}
      onProject={(id) => {
        rememberProject(id);
        setParams({ project: id });
      }}
    />
  );
}

function Viewer({
  projectId,
  projects,
  onProject,
}: {
  projectId: string;
  projects: { id: string; name: string }[];
  onProject: (id: string) => void;
}) {
  const [params, setParams] = useSearchParams();
  const mode: Mode = params.get("mode") === "history" ? "history" : "live";
  const [value, setValue] = useState<ValueKind>("physical");
  const [windowMs, setWindowMs] = useState(5 * 60_000);
  const sensors = useQuery({
    queryKey: ["projects", projectId, "sensors", "all"],
    queryFn: () => backend.sensors.list(projectId, { limit: 500 }),
    refetchInterval: 15_000,
    staleTime: 0,
  });
  const sensorList = useMemo(() => sensors.data?.items ?? [], [sensors.data]);
  const byId = useMemo(() => new Map(sensorList.map((s) => [s.id, s])), [sensorList]);
  const [panels, setPanels] = useState<Panel[]>(() => {
    const fromUrl = params.get("sensors");
    if (fromUrl) return [newPanel(fromUrl.split(",").filter(Boolean))];
    return loadPanels(projectId) ?? [];
  });
  useEffect(() => {
    rememberProject(projectId);
  }, [projectId]);
  // First visit: one panel with the first sensor; unknown sensors are dropped once known.
  useEffect(() => {
    if (!sensors.data) return;
    setPanels((current) => {
      if (current.length === 0 && sensorList.length) return [newPanel([sensorList[0]!.id])];
      const pruned = pruneSensors(current, new Set(byId.keys()));
      return JSON.stringify(pruned) === JSON.stringify(current) ? current : pruned;
    });
  }, [sensors.data, sensorList, byId]);
  useEffect(() => savePanels(projectId, panels), [projectId, panels]);

  const union = useMemo(() => sensorUnion(panels), [panels]);
  const hub = useLiveHub(mode === "live" ? { sensorIds: union } : null, value, { enabled: mode === "live", windowMs });
  useEffect(() => hub.setWindow(windowMs), [hub, windowMs]);
  useEffect(() => {
    window.__etpLive = hub.stats; // read by the e2e bench (points, renders, lag)
  }, [hub]);
  const { state, paused } = useHubState(hub);

  const setMode = (next: Mode) => {
    const p = new URLSearchParams(params);
    p.set("mode", next);
    p.delete("sensors");
    setParams(p, { replace: true });
  };

  return (
    <div className="page wide live-page">
      <PageHeader
        title="Live telemetry"
        subtitle="Chart panels of your sensors: live as points are stored, or from history."
        actions={
          <>
            <label className="visually-hidden" htmlFor="live-project">
              Project
            </label>
            <select id="live-project" className="select compact" value={projectId} onChange={(e) => onProject(e.target.value)}>
              {projects.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </>
        }
      />
      <div className="live-toolbar card">
        <div className="segmented" role="group" aria-label="Mode">
          <button type="button" className={mode === "live" ? "on" : ""} aria-pressed={mode === "live"} onClick={() => setMode("live")}>
            Live
          </button>
          <button type="button" className={mode === "history" ? "on" : ""} aria-pressed={mode === "history"} onClick={() => setMode("history")}>
            History
          </button>
        </div>
        <ValueToggle value={value} onChange={setValue} />
        {mode === "live" ? (
          <>
            <label className="visually-hidden" htmlFor="live-window">
              Time window
            </label>
            <select id="live-window" className="select compact" value={windowMs} onChange={(e) => setWindowMs(Number(e.target.value))}>
              {WINDOWS.map((w) => (
                <option key={w.ms} value={w.ms}>
                  Last {w.label}
                </option>
              ))}
            </select>
            <button type="button" className="btn btn-sm" onClick={() => (paused ? hub.resume() : hub.pause())} aria-pressed={paused}>
              {paused ? <PlayIcon /> : <PauseIcon />}
              {paused ? "Resume" : "Pause"}
            </button>
            <StreamBadge state={state} paused={paused} />
          </>
        ) : (
          <HistoryPicker projectId={projectId} />
        )}
        <span className="grow" />
        <button type="button" className="btn btn-sm btn-primary" onClick={() => setPanels((p) => [...p, newPanel()])}>
          <PlusIcon />
          Add panel
        </button>
      </div>
      {sensors.isSuccess && sensorList.length === 0 ? (
        <div className="card">
          <EmptyState
            icon={<SensorIcon />}
            title="This project has no sensors"
            action={<Link className="btn btn-primary" to={`/projects/${projectId}/sensors`}>Register a sensor</Link>}
          >
            Register a sensor and send it points; they show up here as they arrive.
          </EmptyState>
        </div>
      ) : (
        <PanelGrid
          panels={panels}
          setPanels={setPanels}
          sensors={sensorList}
          byId={byId}
          hub={hub}
          mode={mode}
          value={value}
          refreshSensors={() => void sensors.refetch()}
        />
      )}
    </div>
  );
}

function useHistoryScope(): { scope: HistoryScope | null; bands: CaptureBand[]; label: string } {
  const [params] = useSearchParams();
  const runId = params.get("run");
  const sessionId = params.get("session");
  const rangeMs = Number(params.get("range") ?? RANGES[1]!.ms);
  const sessions = useQuery({
    queryKey: ["runs", runId ?? "", "capture-sessions"],
    queryFn: () => backend.capture.list(runId!),
    enabled: Boolean(runId),
  });
  const list = sessions.data?.items ?? [];
  const bands = useMemo(() => captureBands(list, Date.now()), [list]);
  const [rangeEnd] = useState(() => Date.now());
  if (runId && sessionId) {
    const s = list.find((x) => x.id === sessionId);
    return { scope: { sessionId }, bands, label: s ? `Capture #${s.ordinal}` : "Capture session" };
  }
  if (runId) return { scope: { runId }, bands, label: "Whole run" };
  return { scope: { from: rangeEnd - rangeMs, to: rangeEnd }, bands: [], label: RANGES.find((r) => r.ms === rangeMs)?.label ?? "Range" };
}

function HistoryPicker({ projectId }: { projectId: string }) {
  const [params, setParams] = useSearchParams();
  const runId = params.get("run") ?? "";
  const sessionId = params.get("session") ?? "";
  const runs = useQuery({
    queryKey: ["projects", projectId, "runs", "recent"],
    queryFn: () => backend.runs.search(projectId, { limit: 100 }),
  });
  const sessions = useQuery({
    queryKey: ["runs", runId, "capture-sessions"],
    queryFn: () => backend.capture.list(runId),
    enabled: Boolean(runId),
  });
  const update = (changes: Record<string, string | null>) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    setParams(p, { replace: true });
  };
  return (
    <span className="history-picker">
      <label className="visually-hidden" htmlFor="history-run">
        Run
      </label>
      <select id="history-run" className="select compact" value={runId} onChange={(e) => update({ run: e.target.value || null, session: null })}>
        <option value="">Time range (no run)</option>
        {(runs.data?.items ?? []).map((r) => (
          <option key={r.id} value={r.id}>
            Run: {r.name}
          </option>
        ))}
      </select>
      {runId ? (
        <>
          <label className="visually-hidden" htmlFor="history-session">
            Capture session
          </label>
          <select id="history-session" className="select compact" value={sessionId} onChange={(e) => update({ session: e.target.value || null })}>
            <option value="">All capture sessions</option>
            {(sessions.data?.items ?? [])
              .filter((s) => s.started_at)
              .map((s) => (
                <option key={s.id} value={s.id}>
                  #{s.ordinal} {s.status} · {formatDateTime(s.started_at)}
                  {s.duration_seconds ? ` · ${formatDuration(s.duration_seconds)}` : ""}
                </option>
              ))}
          </select>
        </>
      ) : (
        <>
          <label className="visually-hidden" htmlFor="history-range">
            Time range
          </label>
          <select id="history-range" className="select compact" value={params.get("range") ?? String(RANGES[1]!.ms)} onChange={(e) => update({ range: e.target.value })}>
            {RANGES.map((r) => (
              <option key={r.ms} value={r.ms}>
                {r.label}
              </option>
            ))}
          </select>
        </>
      )}
    </span>
  );
}

function PanelGrid({
  panels,
  setPanels,
  sensors,
  byId,
  hub,
  mode,
  value,
  refreshSensors,
}: {
  panels: Panel[];
  setPanels: (update: (current: Panel[]) => Panel[]) => void;
  sensors: Sensor[];
  byId: Map<string, Sensor>;
  hub: LiveHub;
  mode: Mode;
  value: ValueKind;
  refreshSensors: () => void;
}) {
  const dragged = useRef<string | null>(null);
  const [over, setOver] = useState<string | null>(null);
  const history = useHistoryScope();
  if (panels.length === 0) {
    return (
      <div className="card">
        <EmptyState
          icon={<PulseIcon />}
          title="No panels"
          action={
            <button type="button" className="btn btn-primary" onClick={() => setPanels((p) => [...p, newPanel()])}>
              <PlusIcon />
              Add a panel
            </button>
          }
        >
          Add a panel and choose the sensors it charts.
        </EmptyState>
      </div>
    );
  }
  const dragProps = (panel: Panel) => ({
    onDragOver: (e: DragEvent) => {
      if (!dragged.current) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      setOver(panel.id);
    },
    onDragLeave: () => setOver((o) => (o === panel.id ? null : o)),
    onDrop: (e: DragEvent) => {
      e.preventDefault();
      const from = dragged.current;
      dragged.current = null;
      setOver(null);
      if (from) setPanels((current) => movePanel(current, from, panel.id));
    },
  });
  return (
    <div className="panel-grid" data-testid="panel-grid">
      {panels.map((panel, index) => (
        <section
          key={panel.id}
          className={`card chart-panel${over === panel.id ? " drop-target" : ""}`}
          data-testid="live-panel"
          data-panel={index}
          data-panel-id={panel.id}
          aria-label={`Panel ${index + 1}`}
          {...dragProps(panel)}
        >
          <header className="panel-head">
            <span
              className="drag-handle"
              draggable
              title="Drag to reorder"
              aria-hidden="true"
              data-testid="drag-handle"
              onDragStart={(e) => {
                dragged.current = panel.id;
                e.dataTransfer.effectAllowed = "move";
                e.dataTransfer.setData("text/plain", panel.id);
              }}
              onDragEnd={() => {
                dragged.current = null;
                setOver(null);
              }}
            >
              <GripIcon />
            </span>
            <h2 className="panel-title">
              {panel.sensorIds.length ? panel.sensorIds.map((id) => byId.get(id)?.name ?? "…").join(", ") : `Panel ${index + 1}`}
            </h2>
            <SensorPicker panel={panel} sensors={sensors} onOpen={refreshSensors} onToggle={(id) => setPanels((c) => c.map((p) => (p.id === panel.id ? toggleSensor(p, id) : p)))} />
            <button type="button" className="icon-btn" aria-label={`Move panel ${index + 1} up`} disabled={index === 0} onClick={() => setPanels((c) => shiftPanel(c, panel.id, -1))}>
              ↑
            </button>
            <button
              type="button"
              className="icon-btn"
              aria-label={`Move panel ${index + 1} down`}
              disabled={index === panels.length - 1}
              onClick={() => setPanels((c) => shiftPanel(c, panel.id, 1))}
            >
              ↓
            </button>
            <button type="button" className="icon-btn" aria-label={`Remove panel ${index + 1}`} onClick={() => setPanels((c) => c.filter((p) => p.id !== panel.id))}>
              <TrashIcon />
            </button>
          </header>
          {panel.sensorIds.length === 0 ? (
            <p className="muted chart-empty">Choose sensors for this panel.</p>
          ) : mode === "live" ? (
            <LivePanelChart hub={hub} panel={panel} byId={byId} value={value} />
          ) : history.scope ? (
            <HistoryChart
              sensors={panel.sensorIds.map((id) => ({ id, name: byId.get(id)?.name ?? id.slice(0, 8), unit: unitOf(byId.get(id), value) }))}
              scope={history.scope}
              value={value}
              bands={history.bands}
              height={220}
              testId="panel-history-chart"
            />
          ) : null}
        </section>
      ))}
    </div>
  );
}

function unitOf(sensor: Sensor | undefined, value: ValueKind): string | undefined {
  if (!sensor) return undefined;
  return (value === "raw" ? sensor.input_unit : sensor.display_unit || sensor.input_unit) || undefined;
}

function LivePanelChart({ hub, panel, byId, value }: { hub: LiveHub; panel: Panel; byId: Map<string, Sensor>; value: ValueKind }) {
  const series = useMemo(
    () =>
      panel.sensorIds.map((id) => ({
        label: byId.get(id)?.name ?? id.slice(0, 8),
        unit: unitOf(byId.get(id), value),
        color: colourAt(Math.max(0, [...byId.keys()].indexOf(id))), // a sensor keeps its colour in every panel
      })),
    [panel.sensorIds, byId, value],
  );
  return (
    <LiveChart
      hub={hub}
      sensorIds={panel.sensorIds}
      series={series}
      height={220}
      testId="live-chart"
      ariaLabel={`Live chart of ${series.map((s) => s.label).join(", ")}`}
    />
  );
}

function SensorPicker({
  panel,
  sensors,
  onToggle,
  onOpen,
}: {
  panel: Panel;
  sensors: Sensor[];
  onToggle: (id: string) => void;
  onOpen: () => void;
}) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (event: MouseEvent) => {
      if (box.current && !box.current.contains(event.target as Node)) setOpen(false);
    };
    const escape = (event: KeyboardEvent) => event.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", escape);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", escape);
    };
  }, [open]);
  return (
    <div className="picker" ref={box}>
      <button
        type="button"
        className="btn btn-sm"
        aria-expanded={open}
        aria-haspopup="true"
        onClick={() => {
          if (!open) onOpen();
          setOpen((o) => !o);
        }}
      >
        <SensorIcon />
        Sensors ({panel.sensorIds.length})
      </button>
      {open && (
        <div className="picker-menu" role="group" aria-label="Sensors in this panel">
          {sensors.map((sensor) => (
            <label key={sensor.id} className="check-row">
              <input type="checkbox" checked={panel.sensorIds.includes(sensor.id)} onChange={() => onToggle(sensor.id)} />
              <span className="grow">{sensor.name}</span>
              <SensorStatusBadge status={sensor.status} />
            </label>
          ))}
        </div>
      )}
    </div>
  );
}
