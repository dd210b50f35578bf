// One run: status and its moves, capture control, attached sensors, telemetry with the capture
// timeline, capture sessions with their summaries, metrics, params, env, tags, notes, artifacts.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import { RUN_TRANSITIONS, type Run, type RunStatus } from "../../api/models";
import { KeyValueTable, StatusBadge, TagEditor, Tags } from "../../components/bits";
import { CompareIcon, FlaskIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { EmptyState, Loading, PageHeader } from "../../components/ui";
import { formatDateTime, formatDuration, formatNumber, relativeTime } from "../../lib/format";
import { canEdit, rememberProject, useProject } from "../../lib/hooks";
import { parseParams } from "../../lib/params";
import { experimentKey, runsKey } from "../experiments/ExperimentPage";
import { CaptureControl, runKey, sessionsKey } from "./CaptureControl";
import { CaptureSessions } from "./CaptureSessions";
import { RunMetrics } from "./RunMetrics";
import { RunSensors, runSensorsKey } from "./RunSensors";
import { RunTelemetry } from "./RunTelemetry";

const MOVE_LABEL: Record<RunStatus, string> = {
  draft: "Back to draft",
  running: "Start run",
  succeeded: "Mark succeeded",
  failed: "Mark failed",
  archived: "Archive",
};

export function RunPage() {
  const { runId = "" } = useParams();
  const run = useQuery({ queryKey: runKey(runId), queryFn: () => backend.runs.get(runId), meta: { silent: true } });
  const sessions = useQuery({
    queryKey: sessionsKey(runId),
    queryFn: () => backend.capture.list(runId),
    enabled: run.isSuccess,
    refetchInterval: (query) => (query.state.data?.items.some((s) => s.status === "running" || s.status === "backfilling") ? 5000 : false),
  });
  const sensors = useQuery({
    queryKey: runSensorsKey(runId),
    queryFn: () => backend.runs.sensors(runId),
    enabled: run.isSuccess,
  });
  const experiment = useQuery({
    queryKey: experimentKey(run.data?.experiment_id ?? ""),
    queryFn: () => backend.experiments.get(run.data!.experiment_id),
    enabled: Boolean(run.data),
  });
  const project = useProject(run.data?.project_id);
  useEffect(() => {
    if (run.data) rememberProject(run.data.project_id);
  }, [run.data]);

  if (run.isPending) return <Loading label="Loading run…" />;
  if (run.isError) {
    return (
      <div className="page">
        <div className="card">
          <EmptyState icon={<FlaskIcon />} title="Run not found" action={<Link to="/experiments" className="btn">All experiments</Link>}>
            {isApiError(run.error) && run.error.status === 404 ? "It does not exist, or you are not a member of its project." : run.error.message}
          </EmptyState>
        </div>
      </div>
    );
  }
  const data = run.data;
  const editable = canEdit(project.data?.role);
  const sessionList = sessions.data?.items ?? [];
  const running = sessionList.find((s) => s.status === "running") ?? null;

  return (
    <div className="page wide">
      <PageHeader
        breadcrumb={
          <>
            <Link to="/projects">Projects</Link> / <Link to={`/projects/${data.project_id}`}>{project.data?.name ?? "Project"}</Link> /{" "}
            <Link to={`/experiments/${data.experiment_id}`}>{experiment.data?.name ?? "Experiment"}</Link>
          </>
        }
        title={data.name}
        badge={<StatusBadge status={data.status} />}
        subtitle={<RunTimes run={data} />}
        actions={
          <>
            {editable && <StatusMoves run={data} capturing={Boolean(running)} />}
            <Link className="btn" to={`/experiments/${data.experiment_id}`} title="Pick runs to compare on the experiment page">
              <CompareIcon />
              Compare…
            </Link>
          </>
        }
      />
      <div className="grid-2">
        <CaptureControl run={data} running={running} sensors={sensors.data?.items} editable={editable} />
        <RunSensors run={data} sensors={sensors.data?.items} loading={sensors.isPending} editable={editable} capturing={Boolean(running)} />
      </div>
      <RunTelemetry runId={data.id} sessions={sessionList} sensors={sensors.data?.items ?? []} />
      <CaptureSessions sessions={sessionList} loading={sessions.isPending} runId={data.id} />
      <RunMetrics runId={data.id} live={data.status === "running"} />
      <div className="grid-2">
        <ParamsCard run={data} editable={editable} />
        <section className="card" aria-labelledby="env-title">
          <div className="card-header">
            <div>
              <h2 id="env-title">Environment</h2>
              <p className="muted small">What ran: fixed once the run starts.</p>
            </div>
          </div>
          <dl className="definition card-body compact">
            <dt>Git commit</dt>
            <dd className="mono">{data.git_sha ?? "—"}</dd>
          </dl>
          <KeyValueTable value={data.env} empty="No environment recorded." testId="run-env" />
        </section>
      </div>
      <div className="grid-2">
        <TagsNotesCard run={data} editable={editable} />
        <ArtifactsCard runId={data.id} />
      </div>
    </div>
  );
}

function RunTimes({ run }: { run: Run }) {
  if (!run.started_at) return <>Created {relativeTime(run.created_at)} · not started</>;
  return (
    <>
      Started {formatDateTime(run.started_at)}
      {run.finished_at ? ` · finished ${formatDateTime(run.finished_at)}` : ""} · {formatDuration(run.duration_seconds)}
    </>
  );
}

function useRunUpdate(run: Run) {
  const queryClient = useQueryClient();
  return (updated: Run) => {
    queryClient.setQueryData(runKey(run.id), updated);
    void queryClient.invalidateQueries({ queryKey: runsKey(run.experiment_id) });
  };
}

function StatusMoves({ run, capturing }: { run: Run; capturing: boolean }) {
  const update = useRunUpdate(run);
  const move = useMutation({
    mutationFn: (status: RunStatus) => backend.runs.setStatus(run.id, status),
    onSuccess: (updated) => {
      update(updated);
      toastSuccess(`Run ${updated.status}`, updated.name);
    },
  });
  const moves = RUN_TRANSITIONS[run.status];
  return (
    <span className="actions-row" role="group" aria-label="Change status">
      {moves.map((status) => (
        <button
          key={status}
          type="button"
          className={`btn${status === "failed" ? " btn-danger" : ""}`}
          disabled={move.isPending || (capturing && (status === "succeeded" || status === "failed"))}
          title={capturing && (status === "succeeded" || status === "failed") ? "Stop the capture first" : undefined}
          onClick={() => move.mutate(status)}
        >
          {MOVE_LABEL[status]}
        </button>
      ))}
    </span>
  );
}

function ParamsCard({ run, editable }: { run: Run; editable: boolean }) {
  const [adding, setAdding] = useState(false);
  const [text, setText] = useState("");
  const form = useFormErrors(["params"]);
  const update = useRunUpdate(run);
  const save = useMutation({
    mutationFn: (params: Run["params"]) => backend.runs.update(run.id, { params }),
    meta: { toast: false },
    onSuccess: (updated) => {
      update(updated);
      setText("");
      setAdding(false);
      toastSuccess("Parameters added");
    },
    onError: (error) => form.handle(error, "Could not add the parameters"),
  });
  const count = Object.keys(run.params).length;
  return (
    <section className="card" aria-labelledby="params-title">
      <div className="card-header">
        <div>
          <h2 id="params-title">Parameters</h2>
          <p className="muted small">{count ? `${count} parameter${count === 1 ? "" : "s"}, write-once.` : "Write-once: a key keeps its first value."}</p>
        </div>
        {editable && run.status !== "archived" && !adding && (
          <button type="button" className="btn btn-sm" onClick={() => setAdding(true)}>
            Add parameters
          </button>
        )}
      </div>
      <KeyValueTable value={run.params} empty="No parameters." testId="run-params" />
      {adding && (
        <form
          className="card-body form"
          onSubmit={(event) => {
            event.preventDefault();
            const parsed = parseParams(text);
            if (!parsed.ok) return form.setErrors({ params: parsed.error });
            if (!Object.keys(parsed.value).length) return form.setErrors({ params: "Write at least one key = value." });
            save.mutate(parsed.value);
          }}
          onChange={form.onChange}
          noValidate
        >
          <div className="field">
            <label htmlFor="add-params">New parameters</label>
            <textarea
              id="add-params"
              name="params"
              className="textarea mono"
              placeholder={"seed = 7\ndropout = 0.1"}
              value={text}
              aria-invalid={form.errors.params ? true : undefined}
              onChange={(e) => setText(e.target.value)}
            />
            {form.errors.params && (
              <div className="error" role="alert">
                {form.errors.params}
              </div>
            )}
          </div>
          <div className="form-actions">
            <button type="button" className="btn" onClick={() => setAdding(false)}>
              Cancel
            </button>
            <button type="submit" className="btn btn-primary" disabled={save.isPending}>
              Add
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

function TagsNotesCard({ run, editable }: { run: Run; editable: boolean }) {
  const [editing, setEditing] = useState(false);
  const [tags, setTags] = useState(run.tags);
  const [notes, setNotes] = useState(run.notes);
  const update = useRunUpdate(run);
  const save = useMutation({
    mutationFn: () => backend.runs.update(run.id, { tags, notes }),
    onSuccess: (updated) => {
      update(updated);
      setEditing(false);
      toastSuccess("Run updated");
    },
  });
  return (
    <section className="card" aria-labelledby="notes-title">
      <div className="card-header">
        <h2 id="notes-title">Tags and notes</h2>
        {editable && !editing && (
          <button
            type="button"
            className="btn btn-sm"
            onClick={() => {
              setTags(run.tags);
              setNotes(run.notes);
              setEditing(true);
            }}
          >
            Edit
          </button>
        )}
      </div>
      <div className="card-body">
        {editing ? (
          <form
            className="form"
            onSubmit={(event) => {
              event.preventDefault();
              save.mutate();
            }}
          >
            <div className="field">
              <label htmlFor="run-tags">Tags</label>
              <TagEditor id="run-tags" label="Tags" value={tags} onChange={setTags} />
            </div>
            <div className="field">
              <label htmlFor="run-notes">Notes</label>
              <textarea id="run-notes" className="textarea" rows={5} value={notes} onChange={(e) => setNotes(e.target.value)} />
            </div>
            <div className="form-actions">
              <button type="button" className="btn" onClick={() => setEditing(false)}>
                Cancel
              </button>
              <button type="submit" className="btn btn-primary" disabled={save.isPending}>
                Save
              </button>
            </div>
          </form>
        ) : (
          <div className="stack-sm">
            <Tags tags={run.tags} empty="No tags." />
            <p className={run.notes ? "notes" : "muted"}>{run.notes || "No notes."}</p>
          </div>
        )}
      </div>
    </section>
  );
}

function ArtifactsCard({ runId }: { runId: string }) {
  const artifacts = useQuery({ queryKey: ["runs", runId, "artifacts"], queryFn: () => backend.runs.artifacts(runId) });
  const items = artifacts.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="artifacts-title">
      <div className="card-header">
        <div>
          <h2 id="artifacts-title">Artifacts</h2>
          <p className="muted small">Files the run stored: models, plots, logs.</p>
        </div>
      </div>
      {artifacts.isPending ? null : items.length === 0 ? (
        <p className="muted card-body">No artifacts. Upload them with the Python client or the api.</p>
      ) : (
        <ul className="artifact-list">
          {items.map((a) => (
            <li key={a.id}>
              <a href={backend.runs.artifactContentUrl(a.id)} download>
                {a.name}
              </a>
              <span className="muted small">
                {a.size_bytes !== null ? formatBytes(a.size_bytes) : "—"} · {a.status}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${formatNumber(bytes / 1024 ** 3)} GiB`;
}
