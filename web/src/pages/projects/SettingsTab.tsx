import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { backend } from "../../api/endpoints";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { SubmitButton, TextAreaField, TextField } from "../../components/ui";
import { formatDateTime } from "../../lib/format";
import { auditKey, projectKey, useProjectContext } from "./ProjectPage";
import { PROJECTS_KEY } from "./ProjectsPage";

export function SettingsTab() {
  const { project, isOwner } = useProjectContext();
  return (
    <div style={{ display: "grid", gap: 20 }}>
      {isOwner ? (
        <DetailsForm key={project.updated_at} />
      ) : (
        <section className="card">
          <div className="card-header">
            <h2>Details</h2>
          </div>
          <div className="card-body">
            <dl className="definition">
              <dt>Name</dt>
              <dd>{project.name}</dd>
              <dt>Description</dt>
              <dd>{project.description || "—"}</dd>
              <dt>Created</dt>
              <dd>{formatDateTime(project.created_at)}</dd>
            </dl>
            <p className="muted small" style={{ marginTop: 16 }}>
              Only owners can change the project's details.
            </p>
          </div>
        </section>
      )}
      {isOwner && <DangerZone />}
    </div>
  );
}

function DetailsForm() {
  const { project } = useProjectContext();
  const [name, setName] = useState(project.name);
  const [description, setDescription] = useState(project.description);
  const form = useFormErrors(["name", "description"]);
  const queryClient = useQueryClient();
  const save = useMutation({
    mutationFn: () =>
      backend.projects.update(project.id, { name: name.trim(), description: description.trim() }),
    meta: { toast: false },
    onSuccess: (updated) => {
      queryClient.setQueryData(projectKey(project.id), updated);
      void queryClient.invalidateQueries({ queryKey: PROJECTS_KEY });
      void queryClient.invalidateQueries({ queryKey: auditKey(project.id) });
      toastSuccess("Project saved");
    },
    onError: (error) => form.handle(error, "Could not save the project"),
  });
  const changed = name.trim() !== project.name || description.trim() !== project.description;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      form.setErrors({ name: "The project needs a name." });
      return;
    }
    save.mutate();
  };

  return (
    <section className="card" aria-labelledby="details-title">
      <div className="card-header">
        <h2 id="details-title">Details</h2>
      </div>
      <form onChange={form.onChange} className="card-body form" onSubmit={submit} noValidate aria-label="Project details">
        <TextField
          label="Name"
          name="name"
          value={name}
          maxLength={200}
          onChange={(event) => setName(event.target.value)}
          error={form.errors.name}
        />
        <TextAreaField
          label="Description"
          name="description"
          value={description}
          onChange={(event) => setDescription(event.target.value)}
          error={form.errors.description}
        />
        <div className="form-actions">
          <SubmitButton pending={save.isPending} disabled={!changed}>
            Save changes
          </SubmitButton>
        </div>
      </form>
    </section>
  );
}

function DangerZone() {
  const { project } = useProjectContext();
  const [typed, setTyped] = useState("");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const remove = useMutation({
    mutationFn: () => backend.projects.remove(project.id),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: projectKey(project.id) });
      void queryClient.invalidateQueries({ queryKey: PROJECTS_KEY });
      toastSuccess("Project deleted", project.name);
      navigate("/projects", { replace: true });
    },
  });

  return (
    <section className="card" aria-labelledby="danger-title" style={{ borderColor: "#f0c9c5" }}>
      <div className="card-header">
        <div>
          <h2 id="danger-title">Delete this project</h2>
          <p className="muted small">
            Deletes its experiments, runs, capture sessions and telemetry links. This cannot be
            undone. Refused while a capture is running.
          </p>
        </div>
      </div>
      <form
        className="card-body form-row inline"
        aria-label="Delete project"
        onSubmit={(event) => {
          event.preventDefault();
          if (typed === project.name) remove.mutate();
        }}
      >
        <TextField
          label={`Type “${project.name}” to confirm`}
          value={typed}
          onChange={(event) => setTyped(event.target.value)}
          autoComplete="off"
        />
        <div />
        <div className="inline-submit">
          <SubmitButton
            pending={remove.isPending}
            disabled={typed !== project.name}
            className="btn btn-danger solid"
          >
            Delete project
          </SubmitButton>
        </div>
      </form>
    </section>
  );
}
