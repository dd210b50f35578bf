// The sensors a run's capture sessions record: shown with their status, edited as a checklist
// of the project's sensors (refused by the api while a capture runs).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { backend } from "../../api/endpoints";
import type { Run, RunSensor } from "../../api/models";
import { SensorStatusBadge } from "../../components/bits";
import { SensorIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { EmptyState, SkeletonRows } from "../../components/ui";

export const runSensorsKey = (runId: string) => ["runs", runId, "sensors"] as const;

export function RunSensors({
  run,
  sensors,
  loading,
  editable,
  capturing,
}: {
  run: Run;
  sensors: RunSensor[] | undefined;
  loading: boolean;
  editable: boolean;
  capturing: boolean;
}) {
  const [editing, setEditing] = useState(false);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const queryClient = useQueryClient();
  const available = useQuery({
    queryKey: ["projects", run.project_id, "sensors", "all"],
    queryFn: () => backend.sensors.list(run.project_id, { limit: 500 }),
    enabled: editing || (sensors?.length ?? 0) > 0,
    refetchInterval: 15_000,
  });
  const status = new Map((available.data?.items ?? []).map((s) => [s.id, s]));
  const save = useMutation({
    mutationFn: () => backend.runs.setSensors(run.id, [...chosen]),
    onSuccess: (page) => {
      queryClient.setQueryData(runSensorsKey(run.id), page);
      toastSuccess("Sensors saved", `${page.items.length} attached`);
      setEditing(false);
    },
  });
  const startEditing = () => {
    setChosen(new Set((sensors ?? []).map((s) => s.id)));
    setEditing(true);
  };

  return (
    <section className="card" aria-labelledby="run-sensors-title" data-testid="run-sensors">
      <div className="card-header">
        <div>
          <h2 id="run-sensors-title">Sensors</h2>
          <p className="muted small">Their data is tagged with this run while a capture runs.</p>
        </div>
        {editable && !editing && (
          <button
            type="button"
            className="btn btn-sm"
            onClick={startEditing}
            disabled={capturing}
            title={capturing ? "Stop the capture to change its sensors" : undefined}
          >
            Edit sensors
          </button>
        )}
      </div>
      {loading ? (
        <SkeletonRows rows={2} />
      ) : editing ? (
        <div className="card-body">
          {available.isPending ? (
            <SkeletonRows rows={2} />
          ) : (available.data?.items.length ?? 0) === 0 ? (
            <p className="muted">
              This project has no sensors yet. <Link to={`/projects/${run.project_id}/sensors`}>Register one</Link>.
            </p>
          ) : (
            <fieldset className="checklist">
              <legend className="visually-hidden">Sensors to attach</legend>
              {available.data!.items.map((sensor) => (
                <label key={sensor.id} className="check-row">
                  <input
                    type="checkbox"
                    checked={chosen.has(sensor.id)}
                    onChange={() =>
                      setChosen((current) => {
                        const next = new Set(current);
                        if (next.has(sensor.id)) next.delete(sensor.id);
                        else next.add(sensor.id);
                        return next;
                      })
                    }
                  />
                  <span className="grow">
                    {sensor.name}
                    <span className="muted small"> {sensor.type || "sensor"}{sensor.display_unit ? ` · ${sensor.display_unit}` : ""}</span>
                  </span>
                  <SensorStatusBadge status={sensor.status} />
                </label>
              ))}
            </fieldset>
          )}
          <div className="form-actions" style={{ marginTop: 12 }}>
            <button type="button" className="btn" onClick={() => setEditing(false)}>
              Cancel
            </button>
            <button type="button" className="btn btn-primary" disabled={save.isPending} onClick={() => save.mutate()}>
              {save.isPending && <span className="spinner" aria-hidden="true" />}
              Save sensors
            </button>
          </div>
        </div>
      ) : !sensors || sensors.length === 0 ? (
        <EmptyState icon={<SensorIcon />} title="No sensors attached">
          {editable ? "Use Edit sensors to choose which sensors this run records." : "Nothing is recorded for this run."}
        </EmptyState>
      ) : (
        <ul className="sensor-list">
          {sensors.map((sensor) => {
            const full = status.get(sensor.id);
            return (
              <li key={sensor.id} data-testid="run-sensor" data-name={sensor.name}>
                <Link to={`/sensors/${sensor.id}`} className="row-title">
                  {sensor.name}
                </Link>
                <span className="muted small">
                  {sensor.type || "sensor"}
                  {sensor.expected_rate_hz ? ` · ${sensor.expected_rate_hz} Hz` : ""}
                  {sensor.display_unit || sensor.input_unit ? ` · ${sensor.display_unit || sensor.input_unit}` : ""}
                </span>
                {full && <SensorStatusBadge status={full.status} />}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
