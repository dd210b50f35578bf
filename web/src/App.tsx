import { Suspense, lazy, type ComponentType } from "react";
import { Navigate, type RouteObject } from "react-router-dom";
import { GuestOnly, RequireAuth } from "./auth/session";
import { Layout } from "./components/Layout";
import { FlaskIcon, SensorIcon, WebhookIcon } from "./components/icons";
import { Loading } from "./components/ui";
import { LoginPage } from "./pages/auth/LoginPage";
import { ForgotPasswordPage, ResetPasswordPage } from "./pages/auth/PasswordResetPages";
import { RegisterPage } from "./pages/auth/RegisterPage";
import { ExperimentPage } from "./pages/experiments/ExperimentPage";
import { ExperimentsTab } from "./pages/experiments/ExperimentsTab";
import { GoToProject } from "./pages/GoToProject";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ProfilePage } from "./pages/profile/ProfilePage";
import { AuditTab } from "./pages/projects/AuditTab";
import { MembersTab } from "./pages/projects/MembersTab";
import { ProjectPage } from "./pages/projects/ProjectPage";
import { ProjectsPage } from "./pages/projects/ProjectsPage";
import { SettingsTab } from "./pages/projects/SettingsTab";
import { SensorsTab } from "./pages/sensors/SensorsTab";
import { WebhooksTab } from "./pages/webhooks/WebhooksTab";

/** A screen loaded on first use (charts and their library stay out of the first download). */
function lazyPage<K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) {
  const Page = lazy(async (): Promise<{ default: ComponentType }> => ({ default: (await load())[name] }));
  return function LazyPage() {
    return (
      <Suspense fallback={<Loading />}>
        <Page />
      </Suspense>
    );
  };
}

const BenchPage = lazyPage(() => import("./pages/bench/BenchPage"), "BenchPage");
const LivePage = lazyPage(() => import("./pages/live/LivePage"), "LivePage");
const RunPage = lazyPage(() => import("./pages/runs/RunPage"), "RunPage");
const SensorPage = lazyPage(() => import("./pages/sensors/SensorPage"), "SensorPage");
const ComparePage = lazyPage(() => import("./pages/compare/ComparePage"), "ComparePage");
const ComparisonPage = lazyPage(() => import("./pages/compare/ComparePage"), "ComparisonPage");

/** Paths a signed-out visitor may stay on (a 401 elsewhere routes to login). */
export const PUBLIC_PATHS = ["/login", "/register", "/forgot-password", "/reset-password"];

export const routes: RouteObject[] = [
  { path: "/login", element: <GuestOnly><LoginPage /></GuestOnly> },
  { path: "/register", element: <GuestOnly><RegisterPage /></GuestOnly> },
  { path: "/forgot-password", element: <ForgotPasswordPage /> },
  { path: "/reset-password", element: <ResetPasswordPage /> },
  {
    element: (
      <RequireAuth>
        <Layout />
      </RequireAuth>
    ),
    children: [
      { index: true, element: <Navigate to="/projects" replace /> },
      { path: "projects", element: <ProjectsPage /> },
      {
        path: "projects/:projectId",
        element: <ProjectPage />,
        children: [
          { index: true, element: <ExperimentsTab /> },
          { path: "experiments", element: <ExperimentsTab /> },
          { path: "sensors", element: <SensorsTab /> },
          { path: "members", element: <MembersTab /> },
          { path: "webhooks", element: <WebhooksTab /> },
          { path: "audit", element: <AuditTab /> },
          { path: "settings", element: <SettingsTab /> },
        ],
      },
      { path: "profile", element: <ProfilePage /> },
      {
        path: "experiments",
        element: (
          <GoToProject tab="experiments" title="Experiments" icon={<FlaskIcon />}>
            Experiments live in projects: create a project, then its experiments and runs.
          </GoToProject>
        ),
      },
      { path: "experiments/:experimentId", element: <ExperimentPage /> },
      { path: "runs/:runId", element: <RunPage /> },
      {
        path: "sensors",
        element: (
          <GoToProject tab="sensors" title="Sensors" icon={<SensorIcon />}>
            Sensors belong to a project: create one, then register its sensors.
          </GoToProject>
        ),
      },
      { path: "sensors/:sensorId", element: <SensorPage /> },
      { path: "live", element: <LivePage /> },
      { path: "compare", element: <ComparePage /> },
      { path: "comparisons/:comparisonId", element: <ComparisonPage /> },
      {
        path: "webhooks",
        element: (
          <GoToProject tab="webhooks" title="Webhooks" icon={<WebhookIcon />}>
            Webhooks are set per project.
          </GoToProject>
        ),
      },
      { path: "bench", element: <BenchPage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];
