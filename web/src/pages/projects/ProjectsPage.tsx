import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { FolderIcon, PlusIcon, SearchIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import {
  EmptyState,
  PageHeader,
  RoleBadge,
  SkeletonRows,
  SubmitButton,
  TextAreaField,
  TextField,
} from "../../components/ui";
import { formatDateTime } from "../../lib/format";

export const PROJECTS_KEY = ["projects"] as const;

function useDebounced<T>(value: T, delayMs: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), delayMs);
    return () => window.clearTimeout(timer);
  }, [value, delayMs]);
  return debounced;
}

export function ProjectsPage() {
  const [search, setSearch] = useState("");
  const [creating, setCreating] = useState(false);
  const q = useDebounced(search.trim(), 250);
  const projects = useInfiniteQuery({
    queryKey: [...PROJECTS_KEY, "list", q],
    queryFn: ({ pageParam }) => backend.projects.list({ q, cursor: pageParam, limit: 24 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const items = projects.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <div className="page">
      <PageHeader
        title="Projects"
        subtitle="Each project holds its experiments, runs, sensors and members."
        actions={
          !creating && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <PlusIcon />
              New project
            </button>
          )
        }
      />
      {creating && <CreateProjectCard onClose={() => setCreating(false)} />}
      <div className="toolbar">
        <div className="search" role="search">
          <SearchIcon />
          <label htmlFor="project-search" className="visually-hidden">
            Search projects
          </label>
          <input
            id="project-search"
            className="input"
            type="search"
            placeholder="Search projects by name"
            value={search}
            onChange={(event) => setSearch(event.target.value)}
          />
        </div>
        {projects.isFetching && !projects.isPending && (
          <span className="muted small" role="status">
            Updating…
          </span>
        )}
      </div>
      {projects.isPending ? (
        <div className="card">
          <SkeletonRows rows={4} />
        </div>
      ) : items.length === 0 ? (
        <div className="card">
          {q ? (
            <EmptyState icon={<SearchIcon />} title={`No projects match “${q}”`}>
              Try another name, or clear the search.
            </EmptyState>
          ) : (
            <EmptyState
              icon={<FolderIcon />}
              title="No projects yet"
              action={
                !creating && (
                  <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
                    <PlusIcon />
                    Create your first project
                  </button>
                )
              }
            >
              Create a project, or ask a colleague to add you to theirs.
            </EmptyState>
          )}
        </div>
      ) : (
        <>
          <ul className="project-grid" style={{ listStyle: "none", margin: 0, padding: 0 }}>
            {items.map((project) => (
              <li key={project.id}>
                <Link to={`/projects/${project.id}`} className="card project-card" data-testid="project-card">
                  <div className="top">
                    <h2>{project.name}</h2>
                    <RoleBadge role={project.role} />
                  </div>
                  <p className="desc">{project.description || "No description."}</p>
                  <span className="subtle small">Created {formatDateTime(project.created_at)}</span>
                </Link>
              </li>
            ))}
          </ul>
          {projects.hasNextPage && (
            <div style={{ display: "flex", justifyContent: "center" }}>
              <button
                type="button"
                className="btn"
                disabled={projects.isFetchingNextPage}
                onClick={() => void projects.fetchNextPage()}
              >
                {projects.isFetchingNextPage ? "Loading…" : "Load more"}
              </button>
            </div>
          )}
        </>
      )}
    </div>
  );
}

function CreateProjectCard({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const form = useFormErrors(["name", "description"]);
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: () => backend.projects.create({ name: name.trim(), description: description.trim() }),
    meta: { toast: false },
    onSuccess: (project) => {
      void queryClient.invalidateQueries({ queryKey: PROJECTS_KEY });
      toastSuccess("Project created", project.name);
      navigate(`/projects/${project.id}`);
    },
    onError: (error) => form.handle(error, "Could not create the project"),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      form.setErrors({ name: "Give the project a name." });
      return;
    }
    create.mutate();
  };

  return (
    <section className="card" aria-labelledby="new-project-title">
      <div className="card-header">
        <h2 id="new-project-title">New project</h2>
      </div>
      <form onChange={form.onChange} className="card-body form" onSubmit={submit} noValidate aria-label="New project">
        <TextField
          label="Name"
          name="name"
          autoFocus
          maxLength={200}
          placeholder="e.g. Wind tunnel calibration"
          value={name}
          onChange={(event) => setName(event.target.value)}
          error={form.errors.name}
        />
        <TextAreaField
          label="Description"
          name="description"
          placeholder="What is this project about? (optional)"
          value={description}
          onChange={(event) => setDescription(event.target.value)}
          error={form.errors.description}
        />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pending={create.isPending}>Create project</SubmitButton>
        </div>
      </form>
    </section>
  );
}
