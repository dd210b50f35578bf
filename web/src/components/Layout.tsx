// The signed-in frame: sidebar navigation and content.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { api } from "../api/client";
import { backend } from "../api/endpoints";
import { ME_KEY, useMe } from "../auth/session";
import {
  CompareIcon,
  FlaskIcon,
  FolderIcon,
  LogoMark,
  LogoutIcon,
  PulseIcon,
  SensorIcon,
  WebhookIcon,
} from "./icons";
import { toastError } from "./toastStore";
import { Avatar } from "./ui";

const PROJECTS = /^\/projects(\/[^/]+)?\/?$|^\/projects\/[^/]+\/(members|audit|settings)/;

/** Experiments, Sensors and Webhooks open that tab of the project used last. */
const SECTIONS = [
  { to: "/experiments", label: "Experiments", icon: FlaskIcon, match: /^\/(experiments|runs)\b|^\/projects\/[^/]+\/experiments/ },
  { to: "/sensors", label: "Sensors", icon: SensorIcon, match: /^\/sensors\b|^\/projects\/[^/]+\/sensors/ },
  { to: "/live", label: "Live telemetry", icon: PulseIcon, match: /^\/live\b/ },
  { to: "/compare", label: "Compare runs", icon: CompareIcon, match: /^\/(compare|comparisons)\b/ },
  { to: "/webhooks", label: "Webhooks", icon: WebhookIcon, match: /^\/webhooks\b|^\/projects\/[^/]+\/webhooks/ },
];

export function Layout() {
  const me = useMe();
  const user = me.data?.user;
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();
  const logout = useMutation({
    mutationFn: backend.auth.logout,
    meta: { toast: false },
    onSettled: (_data, error) => {
      if (error && !(error instanceof Error && "status" in error && error.status === 401)) {
        toastError(error, "Sign-out failed");
        return;
      }
      api.setCsrfToken(null);
      queryClient.clear();
      queryClient.setQueryData(ME_KEY, null);
      navigate("/login", { replace: true });
    },
  });

  return (
    <div className="app-shell">
      <aside className="sidebar">
        <NavLink to="/projects" className="brand" aria-label="ETP home">
          <LogoMark className="brand-mark" />
          <span>
            ETP
            <small>Experiment Tracking</small>
          </span>
        </NavLink>
        <nav aria-label="Main">
          <div className="nav-section">Workspace</div>
          <NavLink
            to="/projects"
            className={() => `nav-link${PROJECTS.test(location.pathname) ? " active" : ""}`}
            aria-current={PROJECTS.test(location.pathname) ? "page" : undefined}
          >
            <FolderIcon />
            Projects
          </NavLink>
          {SECTIONS.map(({ to, label, icon: Icon, match }) => (
            <NavLink
              key={to}
              to={to}
              className={() => `nav-link${match.test(location.pathname) ? " active" : ""}`}
              aria-current={match.test(location.pathname) ? "page" : undefined}
            >
              <Icon />
              {label}
            </NavLink>
          ))}
        </nav>
        <div className="sidebar-footer">
          {user && (
            <NavLink to="/profile" className="user-chip" data-testid="user-menu">
              <Avatar name={user.display_name} seed={user.id} />
              <span className="who">
                <span>{user.display_name}</span>
                <span className="email">{user.email}</span>
              </span>
            </NavLink>
          )}
          <button
            type="button"
            className="signout"
            onClick={() => logout.mutate()}
            disabled={logout.isPending}
          >
            <LogoutIcon />
            Sign out
          </button>
        </div>
      </aside>
      <main className="main" id="main">
        <Outlet />
      </main>
    </div>
  );
}
