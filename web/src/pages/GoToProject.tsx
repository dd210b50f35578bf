// The sidebar's Experiments / Sensors / Webhooks: the same tab of the project used last (or the
// first one), since these live inside projects.
import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link, Navigate } from "react-router-dom";
import { backend } from "../api/endpoints";
import { EmptyState, Loading, PageHeader } from "../components/ui";
import { lastProject } from "../lib/hooks";

export function GoToProject({ tab, title, icon, children }: { tab: string; title: string; icon: ReactNode; children: ReactNode }) {
  const projects = useQuery({ queryKey: ["projects", "list", "all"], queryFn: () => backend.projects.list({ limit: 200 }) });
  if (projects.isPending) return <Loading />;
  const items = projects.data?.items ?? [];
  const last = lastProject();
  const target = items.find((p) => p.id === last) ?? items[0];
  if (target) return <Navigate to={`/projects/${target.id}/${tab}`} replace />;
  return (
    <div className="page">
      <PageHeader title={title} />
      <div className="card">
        <EmptyState icon={icon} title="Create a project first" action={<Link className="btn btn-primary" to="/projects">Go to projects</Link>}>
          {children}
        </EmptyState>
      </div>
    </div>
  );
}
