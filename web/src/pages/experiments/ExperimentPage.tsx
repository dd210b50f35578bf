// One experiment: its details and the runs table (filters, sort, multi-select with bulk status
// and tags, compare, export, new run).
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import {
  RUN_STATUSES,
  type BulkFailure,
  type Experiment,
  type Run,
  type RunSort,
  type RunStatus,
} from "../../api/models";
import { StatusBadge, TagEditor, Tags, jsonText, parseTags } from "../../components/bits";
import { CompareIcon, FlaskIcon, PlusIcon, SearchIcon } from "../../components/icons";
import { toastError, toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import {
  EmptyState,
  Loading,
  PageHeader,
  SkeletonRows,
  SubmitButton,
  TextAreaField,
  TextField,
} from "../../components/ui";
import { formatDateTime, formatDuration, relativeTime } from "../../lib/format";
import { canEdit, rememberProject, useDebounced, useProject } from "../../lib/hooks";
import { parseParams } from "../../lib/params";
import { ExportLinks, experimentsKey, useArchive } from "./ExperimentsTab";

export const experimentKey = (experimentId: string) => ["experiments", experimentId] as const;
export const runsKey = (experimentId: string) => ["experiments", experimentId, "runs"] as const;

export function ExperimentPage() {
  const { experimentId = "" } = useParams();
  const experiment = useQuery({
    queryKey: experimentKey(experimentId),
    queryFn: () => backend.experiments.get(experimentId),
    meta: { silent: true },
  });
  const project = useProject(experiment.data?.project_id);
  useEffect(() => {
    if (experiment.data) rememberProject(experiment.data.project_id);
  }, [experiment.data]);

  if (experiment.isPending) return <Loading label="Loading experiment…" />;
  if (experiment.isError) {
    return (
      <div className="page">
        <div className="card">
          <EmptyState icon={<FlaskIcon />} title="Experiment not found" action={<Link to="/experiments" className="btn">All experiments</Link>}>
            {isApiError(experiment.error) && experiment.error.status === 404
              ? "It does not exist, or you are not a member of its project."
              : experiment.error.message}
          </EmptyState>
        </div>
      </div>
    );
  }
  const data = experiment.data;
  const editable = canEdit(project.data?.role);
  return (
    <div className="page wide">
      <PageHeader
        breadcrumb={
          <>
            <Link to="/projects">Projects</Link> /{" "}
            <Link to={`/projects/${data.project_id}`}>{project.data?.name ?? "Project"}</Link> /{" "}
            <Link to={`/projects/${data.project_id}/experiments`}>Experiments</Link>
          </>
        }
        title={data.name}
        badge={<StatusBadge status={data.status} />}
        subtitle={data.description || undefined}
        actions={editable && <ArchiveButton experiment={data} />}
      />
      <ExperimentFacts experiment={data} />
      <RunsCard experiment={data} editable={editable} />
    </div>
  );
}

function ArchiveButton({ experiment }: { experiment: Experiment }) {
  const archive = useArchive(experiment);
  return (
    <button type="button" className="btn" disabled={archive.isPending} onClick={() => archive.mutate()}>
      {archive.isPending && <span className="spinner" aria-hidden="true" />}
      {experiment.status === "archived" ? "Unarchive" : "Archive"}
    </button>
  );
}

function ExperimentFacts({ experiment }: { experiment: Experiment }) {
  return (
    <div className="facts card">
      <div>
        <span className="fact-label">Type</span>
        <span>{experiment.experiment_type || "—"}</span>
      </div>
      <div>
        <span className="fact-label">Tags</span>
        <Tags tags={experiment.tags} />
      </div>
      <div>
        <span className="fact-label">Created</span>
        <span>{formatDateTime(experiment.created_at)}</span>
      </div>
      <div>
        <span className="fact-label">{experiment.archived_at ? "Archived" : "Updated"}</span>
        <span>{formatDateTime(experiment.archived_at ?? experiment.updated_at)}</span>
      </div>
    </div>
  );
}

const SORTS: { value: RunSort; label: string }[] = [
  { value: "-created_at", label: "Newest first" },
  { value: "created_at", label: "Oldest first" },
  { value: "name", label: "Name A–Z" },
  { value: "-name", label: "Name Z–A" },
];

function RunsCard({ experiment, editable }: { experiment: Experiment; editable: boolean }) {
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<RunStatus | "">("");
  const [tagText, setTagText] = useState("");
  const [sort, setSort] = useState<RunSort>("-created_at");
  const [creating, setCreating] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const q = useDebounced(search.trim(), 250);
  const tags = parseTags(useDebounced(tagText, 300));
  const filter = { q: q || undefined, status: status ? [status] : undefined, tags, sort };
  const runs = useInfiniteQuery({
    queryKey: [...runsKey(experiment.id), filter],
    queryFn: ({ pageParam }) => backend.runs.list(experiment.id, { ...filter, cursor: pageParam, limit: 50 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: (query) =>
      query.state.data?.pages.some((p) => p.items.some((r) => r.status === "running")) ? 5000 : false,
  });
  const items = useMemo(() => runs.data?.pages.flatMap((p) => p.items) ?? [], [runs.data]);
  const paramKeys = useMemo(() => {
    const keys = new Set<string>();
    for (const run of items) for (const key of Object.keys(run.params)) keys.add(key);
    return [...keys].sort().slice(0, 4);
  }, [items]);
  // In the order they were ticked: the first one is the comparison's baseline.
  const byId = new Map(items.map((r) => [r.id, r]));
  const visibleSelected = [...selected].flatMap((id) => byId.get(id) ?? []);
  const allSelected = items.length > 0 && visibleSelected.length === items.length;
  const toggle = (id: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const filtered = Boolean(q || status || tags.length);
  const exportFilter = { experiment_id: experiment.id, q: q || undefined, status: status ? [status] : undefined, tags, sort };

  return (
    <>
      {creating && <CreateRunCard experiment={experiment} onClose={() => setCreating(false)} />}
      <section className="card" aria-labelledby="runs-title">
        <div className="card-header">
          <div>
            <h2 id="runs-title">Runs</h2>
            <p className="muted small">Select runs to change their status or tags together, or to compare them.</p>
          </div>
          <div className="actions-row">
            <ExportLinks
              csv={backend.runs.exportUrl(experiment.project_id, "csv", exportFilter)}
              json={backend.runs.exportUrl(experiment.project_id, "json", exportFilter)}
              what="runs"
            />
            {editable && !creating && experiment.status === "active" && (
              <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
                <PlusIcon />
                New run
              </button>
            )}
          </div>
        </div>
        <div className="filters">
          <div className="search" role="search">
            <SearchIcon />
            <label htmlFor="run-search" className="visually-hidden">
              Search runs
            </label>
            <input
              id="run-search"
              className="input"
              type="search"
              placeholder="Search name or notes"
              value={search}
              onChange={(event) => setSearch(event.target.value)}
            />
          </div>
          <label className="visually-hidden" htmlFor="run-status-filter">
            Status
          </label>
          <select id="run-status-filter" className="select compact" value={status} onChange={(e) => setStatus(e.target.value as RunStatus | "")}>
            <option value="">Any status</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          <label className="visually-hidden" htmlFor="run-tags-filter">
            Filter runs by tags
          </label>
          <input
            id="run-tags-filter"
            className="input tag-filter"
            placeholder="Tags, comma-separated"
            value={tagText}
            onChange={(event) => setTagText(event.target.value)}
          />
          <label className="visually-hidden" htmlFor="run-sort">
            Sort
          </label>
          <select id="run-sort" className="select compact" value={sort} onChange={(e) => setSort(e.target.value as RunSort)}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        {visibleSelected.length > 0 && (
          <BulkBar
            runs={visibleSelected}
            editable={editable}
            onDone={() => setSelected(new Set())}
            experimentId={experiment.id}
          />
        )}
        {runs.isPending ? (
          <SkeletonRows rows={4} />
        ) : items.length === 0 ? (
          <EmptyState icon={filtered ? <SearchIcon /> : <FlaskIcon />} title={filtered ? "No runs match" : "No runs yet"}>
            {filtered
              ? "Change the search, the status or the tags."
              : "A run records one execution: its parameters, its metrics and the sensor data captured while it runs."}
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table runs-table" data-testid="runs-table">
              <thead>
                <tr>
                  <th scope="col" className="check">
                    <input
                      type="checkbox"
                      aria-label="Select all runs"
                      checked={allSelected}
                      onChange={() => setSelected(allSelected ? new Set() : new Set(items.map((r) => r.id)))}
                    />
                  </th>
                  <th scope="col">Run</th>
                  <th scope="col">Status</th>
                  {paramKeys.map((key) => (
                    <th scope="col" key={key} className="mono param-col" title={`param ${key}`}>
                      {key}
                    </th>
                  ))}
                  <th scope="col">Tags</th>
                  <th scope="col">Started</th>
                  <th scope="col">Duration</th>
                </tr>
              </thead>
              <tbody>
                {items.map((run) => (
                  <tr key={run.id} data-testid="run-row" data-name={run.name} className={selected.has(run.id) ? "selected" : ""}>
                    <td className="check">
                      <input
                        type="checkbox"
                        aria-label={`Select run ${run.name}`}
                        checked={selected.has(run.id)}
                        onChange={() => toggle(run.id)}
                      />
                    </td>
                    <td>
                      <Link to={`/runs/${run.id}`} className="row-title">
                        {run.name}
                      </Link>
                    </td>
                    <td>
                      <StatusBadge status={run.status} />
                    </td>
                    {paramKeys.map((key) => (
                      <td key={key} className="mono param-col">
                        {key in run.params ? jsonText(run.params[key]) : <span className="subtle">—</span>}
                      </td>
                    ))}
                    <td>
                      <Tags tags={run.tags} />
                    </td>
                    <td title={formatDateTime(run.started_at)}>{run.started_at ? relativeTime(run.started_at) : "—"}</td>
                    <td>{formatDuration(run.duration_seconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {runs.hasNextPage && (
          <div className="card-footer">
            <button type="button" className="btn" disabled={runs.isFetchingNextPage} onClick={() => void runs.fetchNextPage()}>
              {runs.isFetchingNextPage ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </section>
    </>
  );
}

function BulkBar({
  runs,
  editable,
  onDone,
  experimentId,
}: {
  runs: Run[];
  editable: boolean;
  onDone: () => void;
  experimentId: string;
}) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [status, setStatus] = useState<RunStatus>("succeeded");
  const [tagText, setTagText] = useState("");
  const [failures, setFailures] = useState<BulkFailure[] | null>(null);
  const ids = runs.map((r) => r.id);
  const names = new Map(runs.map((r) => [r.id, r.name]));
  const onError = (error: unknown) => {
    const list = isApiError(error) ? (error.details.failures as BulkFailure[] | undefined) : undefined;
    if (list?.length) setFailures(list);
    else toastError(error, "The change was refused");
  };
  const done = (title: string) => {
    toastSuccess(title, `${runs.length} run${runs.length === 1 ? "" : "s"}`);
    setFailures(null);
    setTagText("");
    void queryClient.invalidateQueries({ queryKey: runsKey(experimentId) });
    onDone();
  };
  const setAll = useMutation({
    mutationFn: () => backend.runs.batchStatus(ids, status),
    meta: { toast: false },
    onSuccess: () => done(`Status set to ${status}`),
    onError,
  });
  const tags = useMutation({
    mutationFn: ({ add, remove }: { add: string[]; remove: string[] }) => backend.runs.bulkTags(ids, add, remove),
    meta: { toast: false },
    onSuccess: (_data, { add }) => done(add.length ? "Tags added" : "Tags removed"),
    onError,
  });
  const pending = setAll.isPending || tags.isPending;
  const tagList = parseTags(tagText);
  return (
    <div className="bulk-bar" role="region" aria-label="Selected runs" data-testid="bulk-bar">
      <strong>{runs.length} selected</strong>
      {editable && (
        <>
          <span className="bulk-group">
            <label htmlFor="bulk-status" className="visually-hidden">
              New status
            </label>
            <select id="bulk-status" className="select compact" value={status} onChange={(e) => setStatus(e.target.value as RunStatus)}>
              {RUN_STATUSES.filter((s) => s !== "draft").map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
            <button type="button" className="btn btn-sm" disabled={pending} onClick={() => setAll.mutate()}>
              Set status
            </button>
          </span>
          <span className="bulk-group">
            <label htmlFor="bulk-tags" className="visually-hidden">
              Tags to add or remove
            </label>
            <input
              id="bulk-tags"
              className="input compact"
              placeholder="tags, comma-separated"
              value={tagText}
              onChange={(e) => setTagText(e.target.value)}
            />
            <button type="button" className="btn btn-sm" disabled={pending || !tagList.length} onClick={() => tags.mutate({ add: tagList, remove: [] })}>
              Add tags
            </button>
            <button type="button" className="btn btn-sm" disabled={pending || !tagList.length} onClick={() => tags.mutate({ add: [], remove: tagList })}>
              Remove tags
            </button>
          </span>
        </>
      )}
      <button
        type="button"
        className="btn btn-sm btn-primary"
        disabled={runs.length < 2}
        title={runs.length < 2 ? "Select at least two runs" : undefined}
        onClick={() => navigate(`/compare?runs=${ids.join(",")}`)}
      >
        <CompareIcon />
        Compare
      </button>
      <button type="button" className="btn btn-sm btn-ghost" onClick={onDone}>
        Clear
      </button>
      {failures && (
        <div className="alert alert-danger bulk-failures" role="alert">
          <strong>Nothing was changed:</strong> {failures.length} of {runs.length} runs refuse it.
          <ul>
            {failures.map((f) => (
              <li key={f.run_id}>
                <strong>{names.get(f.run_id) ?? f.run_id.slice(0, 8)}</strong>: {f.message}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function CreateRunCard({ experiment, onClose }: { experiment: Experiment; onClose: () => void }) {
  const [name, setName] = useState("");
  const [params, setParams] = useState("");
  const [notes, setNotes] = useState("");
  const [gitSha, setGitSha] = useState("");
  const [tags, setTags] = useState<string[]>([]);
  const form = useFormErrors(["name", "params", "notes", "git_sha", "tags"]);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: (parsed: Record<string, never> | object) =>
      backend.runs.create(experiment.id, {
        name: name.trim(),
        params: parsed as Run["params"],
        notes: notes.trim(),
        tags,
        git_sha: gitSha.trim() || null,
      }),
    meta: { toast: false },
    onSuccess: (run) => {
      void queryClient.invalidateQueries({ queryKey: runsKey(experiment.id) });
      void queryClient.invalidateQueries({ queryKey: experimentsKey(experiment.project_id) });
      toastSuccess("Run created", run.name);
      navigate(`/runs/${run.id}`);
    },
    onError: (error) => form.handle(error, "Could not create the run"),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    if (!name.trim()) errors.name = "Give the run a name.";
    const parsed = parseParams(params);
    if (!parsed.ok) errors.params = parsed.error;
    if (Object.keys(errors).length || !parsed.ok) {
      form.setErrors(errors);
      return;
    }
    create.mutate(parsed.value);
  };
  return (
    <section className="card" aria-labelledby="new-run-title">
      <div className="card-header">
        <h2 id="new-run-title">New run</h2>
      </div>
      <form className="card-body form" onSubmit={submit} onChange={form.onChange} noValidate aria-label="New run">
        <div className="form-row">
          <TextField
            label="Run name"
            name="name"
            autoFocus
            maxLength={200}
            placeholder="e.g. baseline-probe-A"
            value={name}
            onChange={(e) => setName(e.target.value)}
            error={form.errors.name}
          />
          <TextField
            label="Git commit"
            name="git_sha"
            maxLength={64}
            placeholder="optional, e.g. 3f2c9e1"
            value={gitSha}
            onChange={(e) => setGitSha(e.target.value)}
            error={form.errors.git_sha}
          />
        </div>
        <TextAreaField
          label="Parameters"
          name="params"
          className="textarea mono"
          placeholder={"lr = 0.01\nbatch_size = 32\nprobe = A"}
          hint="One key = value per line, or a JSON object. Parameters are write-once."
          value={params}
          onChange={(e) => setParams(e.target.value)}
          error={form.errors.params}
        />
        <div className="field">
          <label htmlFor="new-run-tags">Tags</label>
          <TagEditor id="new-run-tags" label="Run tags" value={tags} onChange={setTags} />
        </div>
        <TextAreaField label="Notes" name="notes" value={notes} onChange={(e) => setNotes(e.target.value)} error={form.errors.notes} />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pending={create.isPending}>Create run</SubmitButton>
        </div>
      </form>
    </section>
  );
}
