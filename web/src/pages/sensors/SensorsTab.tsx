// The sensor monitor of a project: status (online / delayed / offline / never seen), last seen,
// points per minute and a heartbeat sparkline per sensor, refreshed while the page is open;
// registering a sensor shows its token once.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { SENSOR_STATUSES, type Sensor, type SensorStatus, type SensorWithToken } from "../../api/models";
import { SensorStatusBadge, Sparkline } from "../../components/bits";
import { CopyButton } from "../../components/CopyButton";
import { PlusIcon, SearchIcon, SensorIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { EmptyState, SkeletonRows, SubmitButton, TextAreaField, TextField } from "../../components/ui";
import { formatDateTime, formatNumber, relativeTime } from "../../lib/format";
import { canEdit, useDebounced, useNow } from "../../lib/hooks";
import { useProjectContext } from "../projects/ProjectPage";

export const sensorsKey = (projectId: string) => ["projects", projectId, "sensors"] as const;

const HEARTBEAT_MINUTES = 10;
const HEARTBEAT_BUCKETS = 60;

/** Points per 10-second bucket over the last 10 minutes, per sensor, for the sparklines. */
export function useHeartbeats(sensorIds: string[]) {
  return useQuery({
    queryKey: ["telemetry", "heartbeats", sensorIds],
    queryFn: async ({ signal }) => {
      const to = Date.now();
      const from = to - HEARTBEAT_MINUTES * 60_000;
      const response = await backend.telemetry.aggregate(
        {
          sensor_ids: sensorIds,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          max_points: HEARTBEAT_BUCKETS,
        },
        signal,
      );
      const width = response.bucket_ms;
      const start = Math.floor(from / width) * width;
      const slots = Math.ceil((to - start) / width);
      const result = new Map<string, number[]>();
      for (const series of response.series) {
        const counts = new Array<number>(slots).fill(0);
        for (const bucket of series.buckets) {
          const index = Math.floor((Date.parse(bucket.t) - start) / width);
          if (index >= 0 && index < slots) counts[index] = bucket.count;
        }
        result.set(series.sensor_id, counts);
      }
      return result;
    },
    enabled: sensorIds.length > 0,
    refetchInterval: 10_000,
    meta: { silent: true },
  });
}

export function SensorsTab() {
  const { project, role } = useProjectContext();
  const editable = canEdit(role);
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<SensorStatus | "">("");
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<SensorWithToken | null>(null);
  const q = useDebounced(search.trim(), 250);
  const sensors = useQuery({
    queryKey: [...sensorsKey(project.id), { q, status }],
    queryFn: () => backend.sensors.list(project.id, { q: q || undefined, status: status || undefined, limit: 200 }),
    refetchInterval: 5000,
  });
  const items = sensors.data?.items ?? [];
  const ids = useMemo(() => items.slice(0, 100).map((s) => s.id), [items]);
  const heartbeats = useHeartbeats(ids);
  useNow(15_000); // keeps "last seen" fresh between refreshes
  const counts = countByStatus(items);

  return (
    <div className="stack">
      {creating && (
        <CreateSensorCard
          projectId={project.id}
          onClose={() => setCreating(false)}
          onCreated={(sensor) => {
            setCreated(sensor);
            setCreating(false);
          }}
        />
      )}
      {created && <NewTokenBox sensor={created} onDone={() => setCreated(null)} />}
      <section className="card" aria-labelledby="sensors-title">
        <div className="card-header">
          <div>
            <h2 id="sensors-title">Sensors</h2>
            <p className="muted small">
              Status follows each sensor's expected rate; the heartbeat shows points per 10 s over the last {HEARTBEAT_MINUTES} minutes.
            </p>
          </div>
          {editable && !creating && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <PlusIcon />
              New sensor
            </button>
          )}
        </div>
        <div className="filters">
          <div className="search" role="search">
            <SearchIcon />
            <label htmlFor="sensor-search" className="visually-hidden">
              Search sensors
            </label>
            <input
              id="sensor-search"
              className="input"
              type="search"
              placeholder="Search sensors"
              value={search}
              onChange={(e) => setSearch(e.target.value)}
            />
          </div>
          <div className="segmented" role="group" aria-label="Sensor status">
            <button type="button" className={status === "" ? "on" : ""} aria-pressed={status === ""} onClick={() => setStatus("")}>
              All
            </button>
            {SENSOR_STATUSES.map((s) => (
              <button key={s} type="button" className={status === s ? "on" : ""} aria-pressed={status === s} onClick={() => setStatus(s)}>
                {s === "never_seen" ? "Never seen" : s[0]!.toUpperCase() + s.slice(1)}
                {!status && counts[s] ? <span className="count">{counts[s]}</span> : null}
              </button>
            ))}
          </div>
        </div>
        {sensors.isPending ? (
          <SkeletonRows rows={4} />
        ) : items.length === 0 ? (
          q || status ? (
            <EmptyState icon={<SearchIcon />} title="No sensors match">
              Change the search or the status filter.
            </EmptyState>
          ) : (
            <EmptyState
              icon={<SensorIcon />}
              title="No sensors yet"
              action={
                editable && (
                  <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
                    <PlusIcon />
                    Register a sensor
                  </button>
                )
              }
            >
              A sensor sends points to <code>POST /api/v1/telemetry</code> with its own token.
            </EmptyState>
          )
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="sensors-table">
              <thead>
                <tr>
                  <th scope="col">Sensor</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last seen</th>
                  <th scope="col" className="num">
                    Points/min
                  </th>
                  <th scope="col">Heartbeat</th>
                  <th scope="col">Expected</th>
                </tr>
              </thead>
              <tbody>
                {items.map((sensor) => (
                  <SensorRow key={sensor.id} sensor={sensor} heartbeat={heartbeats.data?.get(sensor.id)} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

function countByStatus(items: Sensor[]): Partial<Record<SensorStatus, number>> {
  const counts: Partial<Record<SensorStatus, number>> = {};
  for (const s of items) counts[s.status] = (counts[s.status] ?? 0) + 1;
  return counts;
}

function SensorRow({ sensor, heartbeat }: { sensor: Sensor; heartbeat: number[] | undefined }) {
  return (
    <tr data-testid="sensor-row" data-name={sensor.name} data-status={sensor.status}>
      <td>
        <Link to={`/sensors/${sensor.id}`} className="row-title">
          {sensor.name}
        </Link>
        <div className="muted small">
          {sensor.type || "sensor"}
          {sensor.display_unit || sensor.input_unit ? ` · ${sensor.display_unit || sensor.input_unit}` : ""}
          {sensor.shared ? " · shared with this project" : ""}
        </div>
      </td>
      <td>
        <SensorStatusBadge status={sensor.status} />
      </td>
      <td title={formatDateTime(sensor.last_seen_at)}>{relativeTime(sensor.last_seen_at)}</td>
      <td className="num" data-testid="points-per-minute">
        {formatNumber(sensor.points_last_minute)}
      </td>
      <td>
        <Sparkline values={heartbeat ?? []} label={`Heartbeat of ${sensor.name}`} />
      </td>
      <td>{sensor.expected_rate_hz ? `${formatNumber(sensor.expected_rate_hz)} Hz` : <span className="subtle">—</span>}</td>
    </tr>
  );
}

export function NewTokenBox({ sensor, onDone, rotated = false }: { sensor: SensorWithToken; onDone: () => void; rotated?: boolean }) {
  return (
    <div className="secret-box" role="status" data-testid="new-sensor-token">
      <div>
        <strong>
          {rotated ? "The new token" : "The token"} of “{sensor.name}”: copy it now.
        </strong>{" "}
        <span className="muted">It is shown only once. The sensor sends it as <code>Authorization: Bearer &lt;token&gt;</code>.</span>
      </div>
      <div className="secret-value">
        <code data-testid="new-sensor-token-value">{sensor.token}</code>
        <CopyButton text={sensor.token} ariaLabel="Copy the sensor token" />
      </div>
      <div className="actions-row">
        <button type="button" className="btn btn-sm" onClick={onDone}>
          I have copied it
        </button>
        {!rotated && (
          <Link className="btn btn-sm btn-ghost" to={`/sensors/${sensor.id}`}>
            Open the sensor
          </Link>
        )}
      </div>
    </div>
  );
}

function CreateSensorCard({
  projectId,
  onClose,
  onCreated,
}: {
  projectId: string;
  onClose: () => void;
  onCreated: (sensor: SensorWithToken) => void;
}) {
  const [name, setName] = useState("");
  const [type, setType] = useState("");
  const [inputUnit, setInputUnit] = useState("");
  const [displayUnit, setDisplayUnit] = useState("");
  const [rate, setRate] = useState("");
  const [description, setDescription] = useState("");
  const form = useFormErrors(["name", "type", "input_unit", "display_unit", "expected_rate_hz", "description"]);
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () =>
      backend.sensors.create(projectId, {
        name: name.trim(),
        type: type.trim(),
        input_unit: inputUnit.trim(),
        display_unit: displayUnit.trim(),
        expected_rate_hz: rate.trim() ? Number(rate) : null,
        description: description.trim(),
      }),
    meta: { toast: false },
    onSuccess: (sensor) => {
      void queryClient.invalidateQueries({ queryKey: sensorsKey(projectId) });
      toastSuccess("Sensor registered", sensor.name);
      onCreated(sensor);
    },
    onError: (error) => form.handle(error, "Could not register the sensor"),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    if (!name.trim()) errors.name = "Give the sensor a name.";
    if (rate.trim() && !(Number(rate) > 0)) errors.expected_rate_hz = "Write a rate above zero, e.g. 10, or leave it empty.";
    if (Object.keys(errors).length) return form.setErrors(errors);
    create.mutate();
  };
  return (
    <section className="card" aria-labelledby="new-sensor-title">
      <div className="card-header">
        <h2 id="new-sensor-title">New sensor</h2>
      </div>
      <form className="card-body form" onSubmit={submit} onChange={form.onChange} noValidate aria-label="New sensor">
        <div className="form-row">
          <TextField label="Sensor name" name="name" autoFocus maxLength={200} placeholder="e.g. pitot-3" value={name} onChange={(e) => setName(e.target.value)} error={form.errors.name} />
          <TextField label="Type" name="type" placeholder="e.g. pressure" value={type} onChange={(e) => setType(e.target.value)} error={form.errors.type} />
        </div>
        <div className="form-row">
          <TextField label="Input unit" name="input_unit" placeholder="what it sends, e.g. mV" value={inputUnit} onChange={(e) => setInputUnit(e.target.value)} error={form.errors.input_unit} />
          <TextField label="Display unit" name="display_unit" placeholder="after conversion, e.g. Pa" value={displayUnit} onChange={(e) => setDisplayUnit(e.target.value)} error={form.errors.display_unit} />
          <TextField
            label="Expected rate (Hz)"
            name="expected_rate_hz"
            inputMode="decimal"
            placeholder="e.g. 10"
            hint="Sets when it counts as delayed or offline, and capture coverage."
            value={rate}
            onChange={(e) => setRate(e.target.value)}
            error={form.errors.expected_rate_hz}
          />
        </div>
        <TextAreaField label="Description" name="description" value={description} onChange={(e) => setDescription(e.target.value)} error={form.errors.description} />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pending={create.isPending}>Register sensor</SubmitButton>
        </div>
      </form>
    </section>
  );
}
