// The project's experiments: search, status and tag filters, create, archive / unarchive,
// export of the filtered list.
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import type { Experiment } from "../../api/models";
import { StatusBadge, TagEditor, Tags, parseTags } from "../../components/bits";
import { DownloadIcon, FlaskIcon, PlusIcon, SearchIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { EmptyState, SkeletonRows, SubmitButton, TextAreaField, TextField } from "../../components/ui";
import { formatDateTime, relativeTime } from "../../lib/format";
import { canEdit, useDebounced } from "../../lib/hooks";
import { useProjectContext } from "../projects/ProjectPage";

export const experimentsKey = (projectId: string) => ["projects", projectId, "experiments"] as const;

type StatusFilter = "active" | "archived" | "all";

export function ExperimentsTab() {
  const { project, role } = useProjectContext();
  const editable = canEdit(role);
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<StatusFilter>("active");
  const [tagText, setTagText] = useState("");
  const [creating, setCreating] = useState(false);
  const q = useDebounced(search.trim(), 250);
  const tags = parseTags(useDebounced(tagText, 300));
  const filter = { q: q || undefined, status: status === "all" ? undefined : [status], tags };
  const experiments = useInfiniteQuery({
    queryKey: [...experimentsKey(project.id), filter],
    queryFn: ({ pageParam }) => backend.experiments.list(project.id, { ...filter, cursor: pageParam, limit: 50 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = experiments.data?.pages.flatMap((p) => p.items) ?? [];
  const filtered = Boolean(q || tags.length || status !== "active");

  return (
    <div className="stack">
      {creating && <CreateExperimentCard projectId={project.id} onClose={() => setCreating(false)} />}
      <section className="card" aria-labelledby="experiments-title">
        <div className="card-header">
          <div>
            <h2 id="experiments-title">Experiments</h2>
            <p className="muted small">An experiment groups the runs of one study; archive it when it is done.</p>
          </div>
          <div className="actions-row">
            <ExportLinks
              csv={backend.experiments.exportUrl(project.id, "csv", filter)}
              json={backend.experiments.exportUrl(project.id, "json", filter)}
              what="experiments"
            />
            {editable && !creating && (
              <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
                <PlusIcon />
                New experiment
              </button>
            )}
          </div>
        </div>
        <div className="filters">
          <div className="search" role="search">
            <SearchIcon />
            <label htmlFor="experiment-search" className="visually-hidden">
              Search experiments
            </label>
            <input
              id="experiment-search"
              className="input"
              type="search"
              placeholder="Search name or description"
              value={search}
              onChange={(event) => setSearch(event.target.value)}
            />
          </div>
          <div className="segmented" role="group" aria-label="Status">
            {(["active", "archived", "all"] as const).map((value) => (
              <button
                key={value}
                type="button"
                className={status === value ? "on" : ""}
                aria-pressed={status === value}
                onClick={() => setStatus(value)}
              >
                {value === "all" ? "All" : value === "active" ? "Active" : "Archived"}
              </button>
            ))}
          </div>
          <label className="visually-hidden" htmlFor="experiment-tags">
            Filter by tags
          </label>
          <input
            id="experiment-tags"
            className="input tag-filter"
            placeholder="Tags, comma-separated"
            value={tagText}
            onChange={(event) => setTagText(event.target.value)}
          />
          {experiments.isFetching && !experiments.isPending && (
            <span className="muted small" role="status">
              Updating…
            </span>
          )}
        </div>
        {experiments.isPending ? (
          <SkeletonRows rows={4} />
        ) : items.length === 0 ? (
          filtered ? (
            <EmptyState icon={<SearchIcon />} title="No experiments match">
              Change the search, the tags or the status filter.
            </EmptyState>
          ) : (
            <EmptyState
              icon={<FlaskIcon />}
              title="No experiments yet"
              action={
                editable && (
                  <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
                    <PlusIcon />
                    Create the first experiment
                  </button>
                )
              }
            >
              Experiments hold runs: their parameters, metrics and the sensor data captured during them.
            </EmptyState>
          )
        ) : (
          <div className="table-wrap">
            <table className="table" data-testid="experiments-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Type</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((experiment) => (
                  <ExperimentRow key={experiment.id} experiment={experiment} editable={editable} />
                ))}
              </tbody>
            </table>
          </div>
        )}
        {experiments.hasNextPage && (
          <div className="card-footer">
            <button type="button" className="btn" disabled={experiments.isFetchingNextPage} onClick={() => void experiments.fetchNextPage()}>
              {experiments.isFetchingNextPage ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </section>
    </div>
  );
}

function ExperimentRow({ experiment, editable }: { experiment: Experiment; editable: boolean }) {
  const archive = useArchive(experiment);
  return (
    <tr data-testid="experiment-row" data-name={experiment.name}>
      <td>
        <Link to={`/experiments/${experiment.id}`} className="row-title">
          {experiment.name}
        </Link>
        {experiment.description && <div className="muted small clamp-1">{experiment.description}</div>}
      </td>
      <td>{experiment.experiment_type || <span className="subtle">—</span>}</td>
      <td>
        <Tags tags={experiment.tags} />
      </td>
      <td>
        <StatusBadge status={experiment.status} />
      </td>
      <td title={formatDateTime(experiment.created_at)}>{relativeTime(experiment.created_at)}</td>
      <td className="actions">
        {editable && (
          <button type="button" className="btn btn-sm" disabled={archive.isPending} onClick={() => archive.mutate()}>
            {experiment.status === "archived" ? "Unarchive" : "Archive"}
          </button>
        )}
      </td>
    </tr>
  );
}

/** Archive or unarchive; the api refuses archiving while a run is running (a toast says so). */
export function useArchive(experiment: Experiment) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () =>
      experiment.status === "archived"
        ? backend.experiments.unarchive(experiment.id)
        : backend.experiments.archive(experiment.id),
    onSuccess: (updated) => {
      toastSuccess(updated.status === "archived" ? "Experiment archived" : "Experiment active again", updated.name);
      queryClient.setQueryData(["experiments", updated.id], updated);
      void queryClient.invalidateQueries({ queryKey: experimentsKey(updated.project_id) });
    },
  });
}

export function ExportLinks({ csv, json, what }: { csv: string; json: string; what: string }) {
  return (
    <span className="export-links" role="group" aria-label={`Export ${what}`}>
      <a className="btn btn-sm" href={csv} download data-testid="export-csv">
        <DownloadIcon />
        CSV
      </a>
      <a className="btn btn-sm" href={json} download data-testid="export-json">
        <DownloadIcon />
        JSON
      </a>
    </span>
  );
}

function CreateExperimentCard({ projectId, onClose }: { projectId: string; onClose: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [type, setType] = useState("");
  const [tags, setTags] = useState<string[]>([]);
  const form = useFormErrors(["name", "description", "experiment_type", "tags"]);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: () =>
      backend.experiments.create(projectId, {
        name: name.trim(),
        description: description.trim(),
        experiment_type: type.trim(),
        tags,
      }),
    meta: { toast: false },
    onSuccess: (experiment) => {
      void queryClient.invalidateQueries({ queryKey: experimentsKey(projectId) });
      toastSuccess("Experiment created", experiment.name);
      navigate(`/experiments/${experiment.id}`);
    },
    onError: (error) => form.handle(error, "Could not create the experiment"),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      form.setErrors({ name: "Give the experiment a name." });
      return;
    }
    create.mutate();
  };
  return (
    <section className="card" aria-labelledby="new-experiment-title">
      <div className="card-header">
        <h2 id="new-experiment-title">New experiment</h2>
      </div>
      <form className="card-body form" onSubmit={submit} onChange={form.onChange} noValidate aria-label="New experiment">
        <div className="form-row">
          <TextField
            label="Experiment name"
            name="name"
            autoFocus
            maxLength={200}
            placeholder="e.g. Pitot array calibration"
            value={name}
            onChange={(event) => setName(event.target.value)}
            error={form.errors.name}
          />
          <TextField
            label="Type"
            name="experiment_type"
            maxLength={100}
            placeholder="e.g. calibration, training (optional)"
            value={type}
            onChange={(event) => setType(event.target.value)}
            error={form.errors.experiment_type}
          />
        </div>
        <TextAreaField
          label="Description"
          name="description"
          placeholder="What is being studied? (optional)"
          value={description}
          onChange={(event) => setDescription(event.target.value)}
          error={form.errors.description}
        />
        <div className="field">
          <label htmlFor="new-experiment-tags">Tags</label>
          <TagEditor id="new-experiment-tags" label="Tags" value={tags} onChange={setTags} />
          {form.errors.tags && (
            <div className="error" role="alert">
              {form.errors.tags}
            </div>
          )}
        </div>
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pending={create.isPending}>Create experiment</SubmitButton>
        </div>
      </form>
    </section>
  );
}
