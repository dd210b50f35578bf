import { useQuery } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link, NavLink, Outlet, useOutletContext, useParams } from "react-router-dom";
import { isApiError } from "../../api/client";
import { backend } from "../../api/endpoints";
import type { Member, Project, Role } from "../../api/models";
import { useMe } from "../../auth/session";
import { CopyButton } from "../../components/CopyButton";
import { FolderIcon } from "../../components/icons";
import { EmptyState, Loading, PageHeader, RoleBadge } from "../../components/ui";
import { rememberProject } from "../../lib/hooks";

export const projectKey = (projectId: string) => ["projects", projectId] as const;
export const membersKey = (projectId: string) => ["projects", projectId, "members"] as const;
export const auditKey = (projectId: string) => ["projects", projectId, "audit"] as const;

export interface ProjectContext {
  project: Project;
  role: Role;
  isOwner: boolean;
  members: Member[] | undefined;
  membersLoading: boolean;
  myUserId: string;
}

export function useProjectContext(): ProjectContext {
  return useOutletContext<ProjectContext>();
}

const tabClass = ({ isActive }: { isActive: boolean }) => `tab${isActive ? " active" : ""}`;

export function ProjectPage() {
  const { projectId = "" } = useParams();
  const me = useMe();
  const project = useQuery({
    queryKey: projectKey(projectId),
    queryFn: () => backend.projects.get(projectId),
    meta: { silent: true },
    retry: (count, error) => !(isApiError(error) && error.status < 500) && count < 2,
  });
  const members = useQuery({
    queryKey: membersKey(projectId),
    queryFn: () => backend.projects.members(projectId),
    enabled: project.isSuccess,
  });

  useEffect(() => {
    if (project.data) rememberProject(project.data.id);
  }, [project.data]);

  if (project.isPending) return <Loading label="Loading project…" />;
  if (project.isError) {
    const error = project.error;
    const missing = isApiError(error) && (error.status === 404 || error.status === 403);
    return (
      <div className="page">
        <div className="card">
          <EmptyState
            icon={<FolderIcon />}
            title={missing ? "Project not found" : "Could not load the project"}
            action={<Link to="/projects" className="btn">Back to projects</Link>}
          >
            {missing
              ? "It does not exist, or you are not a member of it."
              : error.message}
            {isApiError(error) && error.requestId && (
              <span className="small subtle" style={{ display: "block", marginTop: 8 }}>
                Request id <code>{error.requestId}</code>{" "}
                <CopyButton text={error.requestId} small label="" ariaLabel="Copy request id" />
              </span>
            )}
          </EmptyState>
        </div>
      </div>
    );
  }

  const data = project.data;
  const role: Role =
    data.role ??
    members.data?.items.find((member) => member.user_id === me.data?.user.id)?.role ??
    "viewer";
  const context: ProjectContext = {
    project: data,
    role,
    isOwner: role === "owner",
    members: members.data?.items,
    membersLoading: members.isPending,
    myUserId: me.data?.user.id ?? "",
  };

  return (
    <div className="page wide">
      <PageHeader
        breadcrumb={
          <>
            <Link to="/projects">Projects</Link> / <span>{data.name}</span>
          </>
        }
        title={data.name}
        badge={<RoleBadge role={role} />}
        subtitle={data.description || undefined}
      />
      <nav className="tabs" aria-label="Project sections">
        <NavLink end to={`/projects/${projectId}`} className={tabClass}>
          Experiments
        </NavLink>
        <NavLink to={`/projects/${projectId}/sensors`} className={tabClass}>
          Sensors
        </NavLink>
        <NavLink to={`/projects/${projectId}/members`} className={tabClass}>
          Members
        </NavLink>
        <NavLink to={`/projects/${projectId}/webhooks`} className={tabClass}>
          Webhooks
        </NavLink>
        <NavLink to={`/projects/${projectId}/audit`} className={tabClass}>
          Audit log
        </NavLink>
        <NavLink to={`/projects/${projectId}/settings`} className={tabClass}>
          Settings
        </NavLink>
      </nav>
      <Outlet context={context} />
    </div>
  );
}
