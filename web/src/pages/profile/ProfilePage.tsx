import { useMe } from "../../auth/session";
import { formatDateTime } from "../../lib/format";
import { Avatar, PageHeader } from "../../components/ui";
import { PasswordCard } from "./PasswordCard";
import { SessionsCard } from "./SessionsCard";
import { TokensCard } from "./TokensCard";

export function ProfilePage() {
  const me = useMe();
  const user = me.data?.user;
  if (!user) return null;
  return (
    <div className="page">
      <PageHeader title="Your profile" subtitle="Your account, where you are signed in and your API tokens." />
      <div className="grid-2">
        <section className="card" aria-labelledby="account-title">
          <div className="card-header">
            <h2 id="account-title">Account</h2>
          </div>
          <div className="card-body" style={{ display: "grid", gap: 16 }}>
            <div className="person">
              <Avatar name={user.display_name} seed={user.id} />
              <div>
                <div className="name">{user.display_name}</div>
                <div className="muted small">{user.email}</div>
              </div>
            </div>
            <dl className="definition">
              <dt>Member since</dt>
              <dd>{formatDateTime(user.created_at)}</dd>
              <dt>User id</dt>
              <dd>
                <code>{user.id}</code>
              </dd>
            </dl>
          </div>
        </section>
        <PasswordCard />
      </div>
      <SessionsCard />
      <TokensCard />
    </div>
  );
}
