import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { backend } from "../../api/endpoints";
import type { ApiToken, CreatedApiToken } from "../../api/models";
import { CopyButton } from "../../components/CopyButton";
import { KeyIcon } from "../../components/icons";
import { toastSuccess } from "../../components/toastStore";
import { useFormErrors } from "../../components/useFormErrors";
import {
  ConfirmButton,
  EmptyState,
  SelectField,
  SkeletonRows,
  SubmitButton,
  TextField,
} from "../../components/ui";
import { formatDateTime, relativeTime } from "../../lib/format";

export const TOKENS_KEY = ["auth", "tokens"] as const;

const EXPIRY_CHOICES = [
  { value: "", label: "Never" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In a year" },
];

function expiryFrom(days: string): string | null {
  if (!days) return null;
  return new Date(Date.now() + Number(days) * 86_400_000).toISOString();
}

export function TokensCard() {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [expiryDays, setExpiryDays] = useState("90");
  const [created, setCreated] = useState<CreatedApiToken | null>(null);
  const form = useFormErrors(["name", "expires_at"]);
  const tokens = useQuery({ queryKey: TOKENS_KEY, queryFn: backend.auth.tokens });
  const create = useMutation({
    mutationFn: () => backend.auth.createToken(name.trim(), expiryFrom(expiryDays)),
    meta: { toast: false },
    onSuccess: (token) => {
      setCreated(token);
      setName("");
      form.clear();
      void queryClient.invalidateQueries({ queryKey: TOKENS_KEY });
    },
    onError: (error) => form.handle(error, "Could not create the token"),
  });
  const revoke = useMutation({
    mutationFn: (token: ApiToken) => backend.auth.revokeToken(token.id),
    onSuccess: (_data, token) => {
      toastSuccess("Token revoked", token.name);
      if (created?.id === token.id) setCreated(null);
      void queryClient.invalidateQueries({ queryKey: TOKENS_KEY });
    },
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) {
      form.setErrors({ name: "Give the token a name, e.g. the machine that will use it." });
      return;
    }
    create.mutate();
  };
  const items = tokens.data?.items ?? [];

  return (
    <section className="card" aria-labelledby="tokens-title">
      <div className="card-header">
        <div>
          <h2 id="tokens-title">API tokens</h2>
          <p className="muted small">
            For the Python client, the <code>etp</code> CLI and scripts:{" "}
            <code>Authorization: Bearer &lt;token&gt;</code>.
          </p>
        </div>
      </div>
      <div className="card-body" style={{ display: "grid", gap: 16 }}>
        <form onChange={form.onChange} className="form-row inline" onSubmit={submit} noValidate aria-label="Create API token">
          <TextField
            label="Token name"
            name="name"
            placeholder="e.g. lab-pc-3 training script"
            value={name}
            maxLength={100}
            onChange={(event) => setName(event.target.value)}
            error={form.errors.name}
          />
          <SelectField
            label="Expires"
            name="expires_at"
            value={expiryDays}
            onChange={(event) => setExpiryDays(event.target.value)}
            error={form.errors.expires_at}
          >
            {EXPIRY_CHOICES.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </SelectField>
          <div className="inline-submit">
            <SubmitButton pending={create.isPending}>Create token</SubmitButton>
          </div>
        </form>
        {created && (
          <div className="secret-box" role="status" data-testid="new-token">
            <div>
              <strong>Copy your new token “{created.name}” now.</strong>{" "}
              <span className="muted">It is shown only once and cannot be retrieved later.</span>
            </div>
            <div className="secret-value">
              <code data-testid="new-token-value">{created.token}</code>
              <CopyButton text={created.token} ariaLabel="Copy the new token" />
            </div>
            <div>
              <button type="button" className="btn btn-sm" onClick={() => setCreated(null)}>
                I have copied it
              </button>
            </div>
          </div>
        )}
      </div>
      {tokens.isPending ? (
        <SkeletonRows />
      ) : items.length === 0 ? (
        <EmptyState icon={<KeyIcon />} title="No API tokens yet">
          Create one above to use ETP from scripts and the command line.
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="tokens-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((token) => (
                <tr key={token.id}>
                  <td className="name">{token.name}</td>
                  <td className="mono">{token.preview}</td>
                  <td>{formatDateTime(token.created_at)}</td>
                  <td>{relativeTime(token.last_used_at)}</td>
                  <td>{token.expires_at ? formatDateTime(token.expires_at) : "Never"}</td>
                  <td className="actions">
                    <ConfirmButton
                      onConfirm={() => revoke.mutate(token)}
                      pending={revoke.isPending && revoke.variables?.id === token.id}
                      confirmLabel="Revoke"
                      ariaLabel={`Revoke token ${token.name}`}
                    >
                      Revoke
                    </ConfirmButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
