// Conversion profiles of a sensor: versions with their status and window, create (linear,
// polynomial, table; the api's validation messages under the fields), activate, schedule,
// deprecate, and a backfill of stored points: preview first, then approve.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState, type FormEvent } from "react";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import { PROFILE_KINDS, type BackfillPreview, type ConversionProfile, type ProfileKind, type Sensor } from "../../api/models";
import { StatusBadge } from "../../components/bits";
import { PlusIcon } from "../../components/icons";
import { toastError, toastStore, toastSuccess } from "../../components/toastStore";
import { EmptyState, SkeletonRows } from "../../components/ui";
import { formatDateTime, formatNumber } from "../../lib/format";
import { buildPayload, describeProfile, profileField, type ProfileFields } from "../../lib/profiles";

const profilesKey = (sensorId: string) => ["sensors", sensorId, "profiles"] as const;

export function ProfilesCard({ sensor, editable }: { sensor: Sensor; editable: boolean }) {
  const [creating, setCreating] = useState(false);
  const profiles = useQuery({ queryKey: profilesKey(sensor.id), queryFn: () => backend.profiles.list(sensor.id) });
  const items = profiles.data?.items ?? [];
  return (
    <section className="card" aria-labelledby="profiles-title">
      <div className="card-header">
        <div>
          <h2 id="profiles-title">Conversion profiles</h2>
          <p className="muted small">
            Raw values ({sensor.input_unit || "input"}) become physical values ({sensor.display_unit || "display"}) with the profile
            active at each point's time. Without one, physical equals raw.
          </p>
        </div>
        {editable && !creating && (
          <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
            <PlusIcon />
            New profile
          </button>
        )}
      </div>
      {creating && <CreateProfile sensorId={sensor.id} onClose={() => setCreating(false)} />}
      {profiles.isPending ? (
        <SkeletonRows rows={2} />
      ) : items.length === 0 ? (
        <EmptyState title="No profiles yet">Create one; it starts as a draft until you activate or schedule it.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="profiles-table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Conversion</th>
                <th scope="col">Status</th>
                <th scope="col">Valid</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((profile) => (
                <ProfileRow key={profile.id} profile={profile} editable={editable} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ProfileRow({ profile, editable }: { profile: ConversionProfile; editable: boolean }) {
  const queryClient = useQueryClient();
  const [scheduling, setScheduling] = useState(false);
  const [when, setWhen] = useState(() => localInput(Date.now() + 3600_000));
  const [preview, setPreview] = useState<BackfillPreview | null>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: profilesKey(profile.sensor_id) });
  const change = useMutation({
    mutationFn: (action: "activate" | "schedule" | "deprecate") =>
      action === "activate"
        ? backend.profiles.activate(profile.id)
        : action === "deprecate"
          ? backend.profiles.deprecate(profile.id)
          : backend.profiles.schedule(profile.id, new Date(when).toISOString()),
    onSuccess: (changed) => {
      toastSuccess(`Version ${changed.version} ${changed.status}`, changed.notice);
      setScheduling(false);
      refresh();
    },
  });
  const previewRun = useMutation({
    mutationFn: () => backend.profiles.backfillPreview(profile.id),
    onSuccess: setPreview,
  });
  const approve = useMutation({
    mutationFn: () => backend.profiles.backfill(profile.id),
    onSuccess: (job) => {
      toastStore.push({
        kind: "success",
        title: "Backfill started",
        message: `${formatNumber(job.rows_total ?? 0)} stored points are being converted again; affected captures show “backfilling”.`,
      });
      setPreview(null);
      void queryClient.invalidateQueries({ queryKey: ["profiles", profile.id, "backfills"] });
    },
    onError: (error) => toastError(error, "Could not start the backfill"),
    meta: { toast: false },
  });
  const canBackfill = profile.status === "active" || profile.status === "deprecated";
  return (
    <Fragment>
      <tr data-testid="profile-row" data-version={profile.version} data-status={profile.status}>
        <td className="mono">v{profile.version}</td>
        <td>
          <span className="mono">{describeProfile(profile.kind, profile.payload)}</span>
          {profile.description && <div className="muted small">{profile.description}</div>}
        </td>
        <td>
          <StatusBadge status={profile.status} />
        </td>
        <td className="small">
          {profile.valid_from ? formatDateTime(profile.valid_from) : "—"} → {profile.valid_to ? formatDateTime(profile.valid_to) : "open"}
        </td>
        <td className="actions">
          {editable && (
            <span className="actions-row">
              {(profile.status === "draft" || profile.status === "scheduled") && (
                <button type="button" className="btn btn-sm" disabled={change.isPending} onClick={() => change.mutate("activate")}>
                  Activate
                </button>
              )}
              {profile.status === "draft" && (
                <button type="button" className="btn btn-sm" onClick={() => setScheduling((s) => !s)} aria-expanded={scheduling}>
                  Schedule…
                </button>
              )}
              {(profile.status === "active" || profile.status === "scheduled") && (
                <button type="button" className="btn btn-sm btn-danger" disabled={change.isPending} onClick={() => change.mutate("deprecate")}>
                  Deprecate
                </button>
              )}
              {canBackfill && (
                <button type="button" className="btn btn-sm" disabled={previewRun.isPending} onClick={() => previewRun.mutate()}>
                  Backfill preview
                </button>
              )}
            </span>
          )}
        </td>
      </tr>
      {scheduling && (
        <tr className="sub-row">
          <td />
          <td colSpan={4}>
            <form
              className="inline-actions"
              onSubmit={(event) => {
                event.preventDefault();
                change.mutate("schedule");
              }}
            >
              <label htmlFor={`when-${profile.id}`}>Becomes active at</label>
              <input id={`when-${profile.id}`} type="datetime-local" className="input compact" value={when} onChange={(e) => setWhen(e.target.value)} />
              <button type="submit" className="btn btn-sm btn-primary" disabled={change.isPending}>
                Schedule
              </button>
            </form>
          </td>
        </tr>
      )}
      {preview && (
        <tr className="sub-row">
          <td />
          <td colSpan={4}>
            <div className="preview-box" data-testid="backfill-preview">
              <p>
                <strong>{formatNumber(preview.rows_changing)}</strong> of {formatNumber(preview.rows_in_range)} stored points between{" "}
                {formatDateTime(preview.from)} and {formatDateTime(preview.to)} would get new physical values
                {preview.sampled ? " (estimated from a sample)" : ""}.
              </p>
              {preview.sessions.length > 0 && (
                <table className="table inner">
                  <thead>
                    <tr>
                      <th scope="col">Capture session</th>
                      <th scope="col">Points</th>
                      <th scope="col">Mean before → after</th>
                      <th scope="col">Range after</th>
                    </tr>
                  </thead>
                  <tbody>
                    {preview.sessions.map((s) => (
                      <tr key={s.capture_session_id}>
                        <td className="mono">{s.capture_session_id.slice(0, 8)}</td>
                        <td>{formatNumber(s.rows)}</td>
                        <td>
                          {formatNumber(s.before.mean)} → {formatNumber(s.after.mean)}
                        </td>
                        <td>
                          {formatNumber(s.after.min)} … {formatNumber(s.after.max)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <div className="actions-row">
                <button type="button" className="btn btn-primary btn-sm" disabled={approve.isPending || preview.rows_in_range === 0} onClick={() => approve.mutate()}>
                  Approve backfill
                </button>
                <button type="button" className="btn btn-sm" onClick={() => setPreview(null)}>
                  Cancel
                </button>
              </div>
            </div>
          </td>
        </tr>
      )}
    </Fragment>
  );
}

function localInput(ms: number): string {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

type FieldErrors = Partial<Record<keyof ProfileFields | "kind" | "description", string>>;

function CreateProfile({ sensorId, onClose }: { sensorId: string; onClose: () => void }) {
  const [kind, setKind] = useState<ProfileKind>("linear");
  const [fields, setFields] = useState<ProfileFields>({ a: "1", b: "0", coefficients: "", points: "", outOfRange: "clamp" });
  const [description, setDescription] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () => backend.profiles.create(sensorId, { kind, payload: buildPayload(kind, fields), description: description.trim() }),
    meta: { toast: false },
    onSuccess: (profile) => {
      toastSuccess(`Profile v${profile.version} created`, "Activate or schedule it to convert points.");
      void queryClient.invalidateQueries({ queryKey: profilesKey(sensorId) });
      onClose();
    },
    onError: (error) => {
      const field = isApiError(error) ? profileField(error.details.field) : null;
      if (field && isApiError(error)) setErrors({ [field]: sentence(error.message) });
      else toastError(error, "Could not create the profile");
    },
  });
  const set = (key: keyof ProfileFields) => (value: string) => {
    setFields((f) => ({ ...f, [key]: value }));
    setErrors((e) => ({ ...e, [key]: undefined }));
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    create.mutate();
  };
  const err = (key: keyof FieldErrors) =>
    errors[key] ? (
      <div className="error" id={`profile-${key}-error`} role="alert">
        {errors[key]}
      </div>
    ) : null;
  return (
    <form className="card-body form profile-form" onSubmit={submit} noValidate aria-label="New conversion profile">
      <div className="segmented" role="radiogroup" aria-label="Kind">
        {PROFILE_KINDS.map((k) => (
          <button key={k} type="button" role="radio" aria-checked={kind === k} className={kind === k ? "on" : ""} onClick={() => setKind(k)}>
            {k === "linear" ? "Linear" : k === "polynomial" ? "Polynomial" : "Table"}
          </button>
        ))}
      </div>
      {kind === "linear" && (
        <div className="form-row">
          <Field id="profile-a" label="Slope a" value={fields.a} onChange={set("a")} error={err("a")} hint="physical = a · raw + b" />
          <Field id="profile-b" label="Offset b" value={fields.b} onChange={set("b")} error={err("b")} />
        </div>
      )}
      {kind === "polynomial" && (
        <Field
          id="profile-coefficients"
          label="Coefficients c0, c1, c2 …"
          value={fields.coefficients}
          onChange={set("coefficients")}
          error={err("coefficients")}
          hint="physical = c0 + c1·x + c2·x² + … (up to degree 9)"
          placeholder="e.g. 0.1, 1.02, -0.003"
        />
      )}
      {kind === "table" && (
        <div className="form-row">
          <div className="field">
            <label htmlFor="profile-points">Calibration points (raw, physical)</label>
            <textarea
              id="profile-points"
              className="textarea mono"
              rows={5}
              placeholder={"0, 0\n10, 98.2\n20, 201.5"}
              value={fields.points}
              aria-invalid={errors.points ? true : undefined}
              onChange={(e) => set("points")(e.target.value)}
            />
            {err("points") ?? <div className="hint">One pair per line, raw values increasing; linear in between.</div>}
          </div>
          <div className="field">
            <label htmlFor="profile-oor">Outside the table</label>
            <select id="profile-oor" className="select" value={fields.outOfRange} onChange={(e) => set("outOfRange")(e.target.value)}>
              <option value="clamp">Clamp to the nearest point</option>
              <option value="reject">No physical value</option>
            </select>
            {err("outOfRange")}
          </div>
        </div>
      )}
      <Field id="profile-description" label="Description" value={description} onChange={setDescription} error={err("description")} placeholder="e.g. lab calibration 2024-03" />
      {err("kind")}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn btn-primary" disabled={create.isPending}>
          {create.isPending && <span className="spinner" aria-hidden="true" />}
          Create draft
        </button>
      </div>
    </form>
  );
}

function Field({
  id,
  label,
  value,
  onChange,
  error,
  hint,
  placeholder,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  error: React.ReactNode;
  hint?: string;
  placeholder?: string;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        className="input mono"
        value={value}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      {error ?? (hint && <div className="hint">{hint}</div>)}
    </div>
  );
}

function sentence(text: string): string {
  return text ? text[0]!.toUpperCase() + text.slice(1) : text;
}
