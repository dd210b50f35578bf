// One sensor: live values, details, token rotation (the new token shown once), conversion
// profiles, and the ingest error journal.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import type { Sensor, SensorWithToken, ValueKind } from "../../api/models";
import { SensorStatusBadge, jsonText } from "../../components/bits";
import { colourAt } from "../../components/charts/Chart";
import { AlertIcon, KeyIcon, SensorIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { ConfirmButton, EmptyState, Loading, PageHeader, SkeletonRows } from "../../components/ui";
import { formatDateTime, formatNumber, relativeTime } from "../../lib/format";
import { canEdit, rememberProject, useNow, useProject } from "../../lib/hooks";
import { LiveChart, useHubState, useLiveHub } from "../../lib/useLive";
import { StreamBadge, ValueToggle } from "../live/controls";
import { ProfilesCard } from "./ProfilesCard";
import { NewTokenBox, sensorsKey } from "./SensorsTab";

export const sensorKey = (sensorId: string) => ["sensors", sensorId] as const;

export function SensorPage() {
  const { sensorId = "" } = useParams();
  const sensor = useQuery({
    queryKey: sensorKey(sensorId),
    queryFn: () => backend.sensors.get(sensorId),
    refetchInterval: 5000,
    meta: { silent: true },
  });
  const project = useProject(sensor.data?.project_id);
  useEffect(() => {
    if (sensor.data && !sensor.data.shared) rememberProject(sensor.data.project_id);
  }, [sensor.data]);
  useNow(15_000);

  if (sensor.isPending) return <Loading label="Loading sensor…" />;
  if (sensor.isError) {
    return (
      <div className="page">
        <div className="card">
          <EmptyState icon={<SensorIcon />} title="Sensor not found" action={<Link to="/sensors" className="btn">All sensors</Link>}>
            {isApiError(sensor.error) && sensor.error.status === 404 ? "It does not exist, or you cannot see its project." : sensor.error.message}
          </EmptyState>
        </div>
      </div>
    );
  }
  const data = sensor.data;
  const editable = canEdit(project.data?.role) && !data.shared;
  return (
    <div className="page wide">
      <PageHeader
        breadcrumb={
          <>
            <Link to="/projects">Projects</Link> / <Link to={`/projects/${data.project_id}`}>{project.data?.name ?? "Project"}</Link> /{" "}
            <Link to={`/projects/${data.project_id}/sensors`}>Sensors</Link>
          </>
        }
        title={data.name}
        badge={<SensorStatusBadge status={data.status} />}
        subtitle={data.description || undefined}
        actions={project.data?.role === "owner" && !data.shared && <DeleteSensor sensor={data} />}
      />
      <div className="facts card" data-testid="sensor-facts">
        <div>
          <span className="fact-label">Last seen</span>
          <span title={formatDateTime(data.last_seen_at)}>{relativeTime(data.last_seen_at)}</span>
        </div>
        <div>
          <span className="fact-label">Points / min</span>
          <span>{formatNumber(data.points_last_minute)}</span>
        </div>
        <div>
          <span className="fact-label">Expected rate</span>
          <span>{data.expected_rate_hz ? `${formatNumber(data.expected_rate_hz)} Hz` : "—"}</span>
        </div>
        <div>
          <span className="fact-label">Units</span>
          <span>
            {data.input_unit || "—"} → {data.display_unit || "—"}
          </span>
        </div>
        <div>
          <span className="fact-label">Type</span>
          <span>{data.type || "—"}</span>
        </div>
      </div>
      <SensorLive sensor={data} />
      <div className="grid-2">
        <TokenCard sensor={data} editable={editable} />
        <IngestHelp sensor={data} />
      </div>
      <ProfilesCard sensor={data} editable={editable} />
      <ErrorJournal sensorId={data.id} />
    </div>
  );
}

function SensorLive({ sensor }: { sensor: Sensor }) {
  const [value, setValue] = useState<ValueKind>("physical");
  const hub = useLiveHub({ sensorIds: [sensor.id] }, value, { windowMs: 5 * 60_000 });
  const { state } = useHubState(hub);
  const series = useMemo(
    () => [{ label: sensor.name, unit: value === "raw" ? sensor.input_unit : sensor.display_unit || sensor.input_unit, color: colourAt(0) }],
    [sensor.name, sensor.input_unit, sensor.display_unit, value],
  );
  return (
    <section className="card" aria-labelledby="sensor-live-title">
      <div className="card-header">
        <div>
          <h2 id="sensor-live-title">Live values</h2>
          <p className="muted small">The last five minutes, then every point as it is stored.</p>
        </div>
        <div className="actions-row">
          <StreamBadge state={state} />
          <ValueToggle value={value} onChange={setValue} />
        </div>
      </div>
      <div className="card-body">
        <LiveChart hub={hub} sensorIds={[sensor.id]} series={series} height={220} testId="sensor-live-chart" ariaLabel={`Live values of ${sensor.name}`} />
      </div>
    </section>
  );
}

function DeleteSensor({ sensor }: { sensor: Sensor }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => backend.sensors.remove(sensor.id),
    onSuccess: () => {
      toastSuccess("Sensor deleted", sensor.name);
      void queryClient.invalidateQueries({ queryKey: sensorsKey(sensor.project_id) });
      navigate(`/projects/${sensor.project_id}/sensors`);
    },
  });
  return (
    <ConfirmButton onConfirm={() => remove.mutate()} pending={remove.isPending} confirmLabel="Delete sensor" className="btn btn-danger">
      Delete
    </ConfirmButton>
  );
}

const GRACE_CHOICES = [
  { value: 0, label: "Refuse the old token at once" },
  { value: 60, label: "Keep the old token for 1 minute" },
  { value: 600, label: "Keep the old token for 10 minutes" },
];

function TokenCard({ sensor, editable }: { sensor: Sensor; editable: boolean }) {
  const [grace, setGrace] = useState(0);
  const [fresh, setFresh] = useState<SensorWithToken | null>(null);
  const queryClient = useQueryClient();
  const rotate = useMutation({
    mutationFn: () => backend.sensors.rotateToken(sensor.id, grace),
    onSuccess: (updated) => {
      setFresh(updated);
      void queryClient.invalidateQueries({ queryKey: sensorKey(sensor.id) });
      toastSuccess("Token rotated", sensor.name);
    },
  });
  return (
    <section className="card" aria-labelledby="token-title">
      <div className="card-header">
        <div>
          <h2 id="token-title">Token</h2>
          <p className="muted small">The sensor's only credential; stored as a hash, shown once.</p>
        </div>
      </div>
      <div className="card-body stack-sm">
        <dl className="definition compact">
          <dt>Current token</dt>
          <dd className="mono">{sensor.token_preview}</dd>
          {sensor.previous_token_expires_at && (
            <>
              <dt>Old token</dt>
              <dd>accepted until {formatDateTime(sensor.previous_token_expires_at)}</dd>
            </>
          )}
        </dl>
        {fresh ? (
          <NewTokenBox sensor={fresh} rotated onDone={() => setFresh(null)} />
        ) : (
          editable && (
            <div className="inline-actions">
              <label className="visually-hidden" htmlFor="grace">
                Old token
              </label>
              <select id="grace" className="select compact" value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
                {GRACE_CHOICES.map((c) => (
                  <option key={c.value} value={c.value}>
                    {c.label}
                  </option>
                ))}
              </select>
              <ConfirmButton onConfirm={() => rotate.mutate()} pending={rotate.isPending} confirmLabel="Rotate now" className="btn">
                <KeyIcon />
                Rotate token
              </ConfirmButton>
            </div>
          )
        )}
      </div>
    </section>
  );
}

function IngestHelp({ sensor }: { sensor: Sensor }) {
  const origin = typeof window === "undefined" ? "" : window.location.origin;
  return (
    <section className="card" aria-labelledby="ingest-title">
      <div className="card-header">
        <div>
          <h2 id="ingest-title">Sending data</h2>
          <p className="muted small">JSON batches or InfluxDB line protocol; 202 once the points are committed.</p>
        </div>
      </div>
      <div className="card-body">
        <pre className="code-block">{`curl -X POST ${origin}/api/v1/telemetry \\
  -H "Authorization: Bearer $SENSOR_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{"points": [{"ts": "${new Date().toISOString().slice(0, 19)}Z", "value": 1.23}]}'`}</pre>
        <p className="muted small">
          Rate limit: {sensor.rate_points_per_s ? `${formatNumber(sensor.rate_points_per_s)} points/s` : "the server default"}
          {sensor.burst_points ? `, bursts of ${formatNumber(sensor.burst_points)}` : ""}.
        </p>
      </div>
    </section>
  );
}

function ErrorJournal({ sensorId }: { sensorId: string }) {
  const errors = useInfiniteQuery({
    queryKey: ["sensors", sensorId, "errors"],
    queryFn: ({ pageParam }) => backend.sensors.errors(sensorId, { cursor: pageParam, limit: 25 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: 15_000,
  });
  const items = errors.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="card" aria-labelledby="journal-title">
      <div className="card-header">
        <div>
          <h2 id="journal-title">Error journal</h2>
          <p className="muted small">Points this sensor sent that were refused, newest first (the last 1,000 are kept).</p>
        </div>
      </div>
      {errors.isPending ? (
        <SkeletonRows rows={2} />
      ) : items.length === 0 ? (
        <EmptyState icon={<AlertIcon />} title="No errors">
          Every point this sensor sent was accepted.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="error-journal">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Code</th>
                <th scope="col">Message</th>
                <th scope="col">Point</th>
                <th scope="col">Sample</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td title={formatDateTime(e.created_at)}>{relativeTime(e.created_at)}</td>
                  <td>
                    <span className="action-tag">{e.code}</span>
                  </td>
                  <td>{e.message}</td>
                  <td className="num">{e.point_index ?? "—"}</td>
                  <td className="mono small clamp-1" title={jsonText(e.sample)}>
                    {e.sample === null ? "—" : jsonText(e.sample)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {errors.hasNextPage && (
        <div className="card-footer">
          <button type="button" className="btn" disabled={errors.isFetchingNextPage} onClick={() => void errors.fetchNextPage()}>
            Load more
          </button>
        </div>
      )}
    </section>
  );
}
