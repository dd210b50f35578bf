// The project's webhooks: subscriptions (URL, events, active), the signing secret shown once on
// create and rotation, a test ping, and every delivery attempt with its answer.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { backend } from "../../api/endpoints";
import type { Webhook, WebhookWithSecret } from "../../api/models";
import { StatusBadge } from "../../components/bits";
import { CopyButton } from "../../components/CopyButton";
import { PlusIcon, WebhookIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import { ConfirmButton, EmptyState, SkeletonRows, SubmitButton, TextField } from "../../components/ui";
import { formatDateTime, relativeTime } from "../../lib/format";
import { canEdit } from "../../lib/hooks";
import { useProjectContext } from "../projects/ProjectPage";

const webhooksKey = (projectId: string) => ["projects", projectId, "webhooks"] as const;

export function WebhooksTab() {
  const { project, role } = useProjectContext();
  const manage = role === "owner" || canEdit(role);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<WebhookWithSecret | null>(null);
  const hooks = useQuery({ queryKey: webhooksKey(project.id), queryFn: () => backend.webhooks.list(project.id) });
  const items = hooks.data?.items ?? [];
  return (
    <div className="stack">
      {creating && (
        <CreateWebhook
          projectId={project.id}
          onClose={() => setCreating(false)}
          onCreated={(hook) => {
            setSecret(hook);
            setCreating(false);
          }}
        />
      )}
      {secret && <SecretBox hook={secret} onDone={() => setSecret(null)} />}
      <section className="card" aria-labelledby="webhooks-title">
        <div className="card-header">
          <div>
            <h2 id="webhooks-title">Webhooks</h2>
            <p className="muted small">
              ETP POSTs signed JSON (Standard Webhooks: <code>webhook-id</code>, <code>webhook-timestamp</code>,{" "}
              <code>webhook-signature</code>) to these URLs when events happen; failures are retried.
            </p>
          </div>
          {manage && !creating && (
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <PlusIcon />
              New webhook
            </button>
          )}
        </div>
        {hooks.isPending ? (
          <SkeletonRows rows={2} />
        ) : items.length === 0 ? (
          <EmptyState icon={<WebhookIcon />} title="No webhooks">
            Get a POST when a capture stops, a run finishes or a sensor goes offline.
          </EmptyState>
        ) : (
          <ul className="webhook-list">
            {items.map((hook) => (
              <WebhookItem key={hook.id} hook={hook} manage={manage} onSecret={setSecret} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function SecretBox({ hook, onDone }: { hook: WebhookWithSecret; onDone: () => void }) {
  return (
    <div className="secret-box" role="status" data-testid="webhook-secret">
      <div>
        <strong>The signing secret of {hook.url}: copy it now.</strong> <span className="muted">It is shown only once.</span>
      </div>
      <div className="secret-value">
        <code>{hook.secret}</code>
        <CopyButton text={hook.secret} ariaLabel="Copy the signing secret" />
      </div>
      <div>
        <button type="button" className="btn btn-sm" onClick={onDone}>
          I have copied it
        </button>
      </div>
    </div>
  );
}

function WebhookItem({ hook, manage, onSecret }: { hook: Webhook; manage: boolean; onSecret: (hook: WebhookWithSecret) => void }) {
  const [open, setOpen] = useState(false);
  const queryClient = useQueryClient();
  const refresh = () => void queryClient.invalidateQueries({ queryKey: webhooksKey(hook.project_id) });
  const toggle = useMutation({
    mutationFn: () => backend.webhooks.update(hook.id, { is_active: !hook.is_active }),
    onSuccess: (updated) => {
      toastSuccess(updated.is_active ? "Webhook enabled" : "Webhook paused", updated.url);
      refresh();
    },
  });
  const ping = useMutation({
    mutationFn: () => backend.webhooks.test(hook.id),
    onSuccess: () => {
      toastSuccess("Test ping queued", "It shows in the deliveries in a moment.");
      setOpen(true);
      setTimeout(() => void queryClient.invalidateQueries({ queryKey: ["webhooks", hook.id, "deliveries"] }), 1500);
    },
  });
  const rotate = useMutation({ mutationFn: () => backend.webhooks.rotateSecret(hook.id), onSuccess: (h) => { onSecret(h); refresh(); } });
  const remove = useMutation({
    mutationFn: () => backend.webhooks.remove(hook.id),
    onSuccess: () => {
      toastSuccess("Webhook deleted", hook.url);
      refresh();
    },
  });
  return (
    <li className="webhook-item" data-testid="webhook-item">
      <div className="webhook-main">
        <div className="grow">
          <div className="row-title mono">{hook.url}</div>
          <div className="muted small">
            {hook.event_types.includes("*") ? "All events" : hook.event_types.join(", ")} · secret {hook.secret_preview} · created {relativeTime(hook.created_at)}
          </div>
          {hook.description && <div className="small">{hook.description}</div>}
        </div>
        <StatusBadge status={hook.is_active ? "active" : "paused"} />
        <span className="actions-row">
          <button type="button" className="btn btn-sm" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
            Deliveries
          </button>
          {manage && (
            <>
              <button type="button" className="btn btn-sm" disabled={ping.isPending} onClick={() => ping.mutate()}>
                Send test
              </button>
              <button type="button" className="btn btn-sm" disabled={toggle.isPending} onClick={() => toggle.mutate()}>
                {hook.is_active ? "Pause" : "Enable"}
              </button>
              <ConfirmButton className="btn btn-sm" confirmLabel="Rotate" onConfirm={() => rotate.mutate()} pending={rotate.isPending}>
                Rotate secret
              </ConfirmButton>
              <ConfirmButton onConfirm={() => remove.mutate()} pending={remove.isPending} ariaLabel={`Delete webhook ${hook.url}`}>
                Delete
              </ConfirmButton>
            </>
          )}
        </span>
      </div>
      {open && <Deliveries webhookId={hook.id} />}
    </li>
  );
}

function Deliveries({ webhookId }: { webhookId: string }) {
  const deliveries = useInfiniteQuery({
    queryKey: ["webhooks", webhookId, "deliveries"],
    queryFn: ({ pageParam }) => backend.webhooks.deliveries(webhookId, { cursor: pageParam, limit: 20 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    refetchInterval: 5000,
  });
  const items = deliveries.data?.pages.flatMap((p) => p.items) ?? [];
  if (deliveries.isPending) return <SkeletonRows rows={2} />;
  if (!items.length) return <p className="muted small deliveries-empty">No deliveries yet.</p>;
  return (
    <div className="table-wrap">
      <table className="table inner" data-testid="deliveries">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Event</th>
            <th scope="col">Attempt</th>
            <th scope="col">Result</th>
            <th scope="col">Answer</th>
            <th scope="col">Latency</th>
          </tr>
        </thead>
        <tbody>
          {items.map((d) => (
            <tr key={d.id}>
              <td title={formatDateTime(d.created_at)}>{relativeTime(d.created_at)}</td>
              <td className="mono">{d.event_type}</td>
              <td>{d.attempt}</td>
              <td>
                <StatusBadge status={d.status} />
              </td>
              <td className="small clamp-1" title={d.error ?? d.response_body ?? ""}>
                {d.response_code ? `HTTP ${d.response_code}` : ""} {d.error ?? ""}
              </td>
              <td className="num">{d.latency_ms === null ? "—" : `${d.latency_ms} ms`}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {deliveries.hasNextPage && (
        <div className="card-footer">
          <button type="button" className="btn btn-sm" onClick={() => void deliveries.fetchNextPage()}>
            Load more
          </button>
        </div>
      )}
    </div>
  );
}

function CreateWebhook({
  projectId,
  onClose,
  onCreated,
}: {
  projectId: string;
  onClose: () => void;
  onCreated: (hook: WebhookWithSecret) => void;
}) {
  const [url, setUrl] = useState("https://");
  const [events, setEvents] = useState<string[]>(["*"]);
  const [description, setDescription] = useState("");
  const form = useFormErrors(["url", "event_types", "description"]);
  const catalogue = useQuery({ queryKey: ["webhooks", "event-types"], queryFn: backend.webhooks.eventTypes, staleTime: 3600_000 });
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () => backend.webhooks.create(projectId, { url: url.trim(), event_types: events, description: description.trim() }),
    meta: { toast: false },
    onSuccess: (hook) => {
      void queryClient.invalidateQueries({ queryKey: webhooksKey(projectId) });
      toastSuccess("Webhook created", hook.url);
      onCreated(hook);
    },
    onError: (error) => form.handle(error, "Could not create the webhook"),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!/^https?:\/\/.+/.test(url.trim())) return form.setErrors({ url: "Write the full URL, e.g. https://example.com/etp-hook." });
    if (!events.length) return form.setErrors({ event_types: "Choose at least one event." });
    create.mutate();
  };
  const toggle = (name: string) => setEvents((current) => (current.includes(name) ? current.filter((e) => e !== name) : [...current.filter((e) => e !== "*"), name]));
  const names = (catalogue.data?.items ?? []).filter((n) => n !== "webhook.ping");
  return (
    <section className="card" aria-labelledby="new-webhook-title">
      <div className="card-header">
        <h2 id="new-webhook-title">New webhook</h2>
      </div>
      <form className="card-body form" onSubmit={submit} onChange={form.onChange} noValidate aria-label="New webhook">
        <TextField label="Payload URL" name="url" type="url" value={url} onChange={(e) => setUrl(e.target.value)} error={form.errors.url} />
        <fieldset className="field">
          <legend>Events</legend>
          <label className="check-row inline">
            <input type="checkbox" checked={events.includes("*")} onChange={() => setEvents(events.includes("*") ? [] : ["*"])} />
            Every event
          </label>
          <div className="event-grid">
            {names.map((name) => (
              <label key={name} className="check-row inline">
                <input type="checkbox" disabled={events.includes("*")} checked={events.includes("*") || events.includes(name)} onChange={() => toggle(name)} />
                <span className="mono small">{name}</span>
              </label>
            ))}
          </div>
          {form.errors.event_types && (
            <div className="error" role="alert">
              {form.errors.event_types}
            </div>
          )}
        </fieldset>
        <TextField label="Description" name="description" value={description} onChange={(e) => setDescription(e.target.value)} error={form.errors.description} />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pending={create.isPending}>Create webhook</SubmitButton>
        </div>
      </form>
    </section>
  );
}
