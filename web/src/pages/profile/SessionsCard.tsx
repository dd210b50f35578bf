import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { backend } from "../../api/endpoints";
import type { UserSession } from "../../api/models";
import { toastSuccess } from "../../components/toastStore";
import { ConfirmButton, EmptyState, SkeletonRows } from "../../components/ui";
import { describeUserAgent, formatDateTime, relativeTime } from "../../lib/format";

export const SESSIONS_KEY = ["auth", "sessions"] as const;

export function SessionsCard() {
  const queryClient = useQueryClient();
  const sessions = useQuery({ queryKey: SESSIONS_KEY, queryFn: backend.auth.sessions });
  const revoke = useMutation({
    mutationFn: (session: UserSession) => backend.auth.revokeSession(session.id),
    onSuccess: (_data, session) => {
      toastSuccess("Session revoked", describeUserAgent(session.user_agent));
      void queryClient.invalidateQueries({ queryKey: SESSIONS_KEY });
    },
  });
  const items = sessions.data?.items ?? [];

  return (
    <section className="card" aria-labelledby="sessions-title">
      <div className="card-header">
        <div>
          <h2 id="sessions-title">Signed-in sessions</h2>
          <p className="muted small">Browsers where your account is signed in. Revoke any you don't recognise.</p>
        </div>
      </div>
      {sessions.isPending ? (
        <SkeletonRows />
      ) : items.length === 0 ? (
        <EmptyState title="No active sessions" />
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="sessions-table">
            <thead>
              <tr>
                <th scope="col">Client</th>
                <th scope="col">Address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last active</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((session) => (
                <tr key={session.id}>
                  <td>
                    <span title={session.user_agent ?? undefined}>{describeUserAgent(session.user_agent)}</span>{" "}
                    {session.current && <span className="badge badge-current">This browser</span>}
                  </td>
                  <td className="mono">{session.client_ip ?? "—"}</td>
                  <td>{formatDateTime(session.created_at)}</td>
                  <td>{relativeTime(session.last_seen_at)}</td>
                  <td>{formatDateTime(session.expires_at)}</td>
                  <td className="actions">
                    {!session.current && (
                      <ConfirmButton
                        onConfirm={() => revoke.mutate(session)}
                        pending={revoke.isPending && revoke.variables?.id === session.id}
                        confirmLabel="Revoke"
                        ariaLabel={`Revoke session ${describeUserAgent(session.user_agent)}`}
                      >
                        Revoke
                      </ConfirmButton>
                    )}
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
