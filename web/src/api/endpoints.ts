// One typed function per endpoint of shared/api.md. Screens use these, never raw paths.
import { api, API_PREFIX, type ApiClient } from "./client";
import type {
  AggregateQuery,
  AggregateResponse,
  ApiToken,
  Artifact,
  AuditEvent,
  AuditFilter,
  BackfillJob,
  BackfillPreview,
  CaptureSession,
  CaptureStartInput,
  Comparison,
  ComparisonInput,
  ConversionProfile,
  CreatedApiToken,
  Experiment,
  ExperimentInput,
  IngestResult,
  ListFilter,
  LoginInput,
  Me,
  Member,
  MetricsDownsampled,
  Page,
  ProfileChange,
  ProfileInput,
  Project,
  ProjectInput,
  RegisterInput,
  Role,
  Run,
  RunFilter,
  RunInput,
  RunMetricPoint,
  RunMetricSummary,
  RunSensor,
  RunStatus,
  Sensor,
  SensorIngestError,
  SensorInput,
  SensorStatus,
  SensorWithToken,
  SignedIn,
  TelemetryPoint,
  TelemetryPointIn,
  TelemetryQuery,
  Uuid,
  UserSession,
  ValueKind,
  Webhook,
  WebhookDelivery,
  WebhookInput,
  WebhookWithSecret,
} from "./models";

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
}

const id = encodeURIComponent;

export function endpoints(client: ApiClient) {
  return {
    auth: {
      register: (input: RegisterInput) =>
        client.post<SignedIn>("/auth/register", input, { expectUnauthenticated: true }),
      login: (input: LoginInput) =>
        client.post<SignedIn>("/auth/login", input, { expectUnauthenticated: true }),
      logout: () => client.post<void>("/auth/logout", undefined, { expectUnauthenticated: true }),
      /** The signed-in user, or null when nobody is (a 401 here is an answer, not an error). */
      me: async (): Promise<Me | null> => {
        try {
          return await client.get<Me>("/auth/me", undefined, { expectUnauthenticated: true });
        } catch (error) {
          if (error instanceof Error && "status" in error && error.status === 401) return null;
          throw error;
        }
      },
      sessions: () => client.get<Page<UserSession>>("/auth/sessions"),
      revokeSession: (sessionId: Uuid) => client.delete(`/auth/sessions/${id(sessionId)}`),
      changePassword: (current_password: string, new_password: string) =>
        client.post<{ ended_sessions: number }>("/auth/password", {
          current_password,
          new_password,
        }),
      requestPasswordReset: (email: string) =>
        client.post<{ status: string }>("/auth/password-reset", { email }),
      confirmPasswordReset: (token: string, new_password: string) =>
        client.post<void>("/auth/password-reset/confirm", { token, new_password }),
      tokens: () => client.get<Page<ApiToken>>("/auth/tokens"),
      createToken: (name: string, expires_at?: string | null) =>
        client.post<CreatedApiToken>("/auth/tokens", { name, expires_at: expires_at ?? null }),
      revokeToken: (tokenId: Uuid) => client.delete(`/auth/tokens/${id(tokenId)}`),
    },

    projects: {
      list: (query: PageQuery & { q?: string } = {}) =>
        client.get<Page<Project>>("/projects", { ...query }),
      create: (input: ProjectInput) => client.post<Project>("/projects", input),
      get: (projectId: Uuid) => client.get<Project>(`/projects/${id(projectId)}`),
      update: (projectId: Uuid, changes: Partial<ProjectInput>) =>
        client.patch<Project>(`/projects/${id(projectId)}`, changes),
      remove: (projectId: Uuid) => client.delete(`/projects/${id(projectId)}`),
      members: (projectId: Uuid) => client.get<Page<Member>>(`/projects/${id(projectId)}/members`),
      addMember: (projectId: Uuid, email: string, role: Role) =>
        client.post<Member>(`/projects/${id(projectId)}/members`, { email, role }),
      changeMember: (projectId: Uuid, userId: Uuid, role: Role) =>
        client.patch<Member>(`/projects/${id(projectId)}/members/${id(userId)}`, { role }),
      removeMember: (projectId: Uuid, userId: Uuid) =>
        client.delete(`/projects/${id(projectId)}/members/${id(userId)}`),
      audit: (projectId: Uuid, query: PageQuery & AuditFilter = {}) =>
        client.get<Page<AuditEvent>>(`/projects/${id(projectId)}/audit`, { ...query }),
    },

    experiments: {
      list: (projectId: Uuid, query: PageQuery & ListFilter = {}) =>
        client.get<Page<Experiment>>(`/projects/${id(projectId)}/experiments`, { ...query }),
      create: (projectId: Uuid, input: ExperimentInput) =>
        client.post<Experiment>(`/projects/${id(projectId)}/experiments`, input),
      get: (experimentId: Uuid) => client.get<Experiment>(`/experiments/${id(experimentId)}`),
      update: (experimentId: Uuid, changes: Partial<ExperimentInput>) =>
        client.patch<Experiment>(`/experiments/${id(experimentId)}`, changes),
      remove: (experimentId: Uuid) => client.delete(`/experiments/${id(experimentId)}`),
      archive: (experimentId: Uuid) =>
        client.post<Experiment>(`/experiments/${id(experimentId)}/archive`),
      unarchive: (experimentId: Uuid) =>
        client.post<Experiment>(`/experiments/${id(experimentId)}/unarchive`),
      exportUrl: (projectId: Uuid, format: "csv" | "json", filter: ListFilter = {}) =>
        client.url(`/projects/${id(projectId)}/experiments/export`, { ...filter, format }),
    },

    runs: {
      list: (experimentId: Uuid, query: PageQuery & RunFilter = {}) =>
        client.get<Page<Run>>(`/experiments/${id(experimentId)}/runs`, { ...query }),
      /** Every run of a project (the experiment filters plus `experiment_id`). */
      search: (projectId: Uuid, query: PageQuery & RunFilter = {}) =>
        client.get<Page<Run>>(`/projects/${id(projectId)}/runs`, { ...query }),
      create: (experimentId: Uuid, input: RunInput) =>
        client.post<Run>(`/experiments/${id(experimentId)}/runs`, input),
      get: (runId: Uuid) => client.get<Run>(`/runs/${id(runId)}`),
      update: (runId: Uuid, changes: Partial<RunInput>) =>
        client.patch<Run>(`/runs/${id(runId)}`, changes),
      setStatus: (runId: Uuid, status: RunStatus) =>
        client.post<Run>(`/runs/${id(runId)}/status`, { status }),
      /** All or nothing: a refusal is a 409 whose `details.failures` names each run. */
      batchStatus: (runIds: Uuid[], status: RunStatus) =>
        client.post<{ items: Run[] }>("/runs:batch-status", { run_ids: runIds, status }),
      bulkTags: (runIds: Uuid[], add: string[], remove: string[]) =>
        client.post<{ items: Run[] }>("/runs:bulk-tags", { run_ids: runIds, add, remove }),
      sensors: (runId: Uuid) => client.get<Page<RunSensor>>(`/runs/${id(runId)}/sensors`),
      setSensors: (runId: Uuid, sensorIds: Uuid[]) =>
        client.put<Page<RunSensor>>(`/runs/${id(runId)}/sensors`, { sensor_ids: sensorIds }),
      exportUrl: (projectId: Uuid, format: "csv" | "json", filter: RunFilter = {}) =>
        client.url(`/projects/${id(projectId)}/runs/export`, { ...filter, format }),
      logMetrics: (runId: Uuid, points: { name: string; value: number; step?: number }[]) =>
        client.post<{ accepted: number }>(`/runs/${id(runId)}/metrics`, { metrics: points }),
      metricPoints: (runId: Uuid, query: PageQuery & { name?: string } = {}) =>
        client.get<Page<RunMetricPoint>>(`/runs/${id(runId)}/metrics`, { ...query }),
      /** Every series (or `names`) in at most `max_points` step buckets with exact min/max. */
      metrics: (runId: Uuid, max_points: number, names?: string[]) =>
        client.get<MetricsDownsampled>(`/runs/${id(runId)}/metrics`, { max_points, name: names }),
      metricsSummary: (runId: Uuid) =>
        client.get<Page<RunMetricSummary>>(`/runs/${id(runId)}/metrics/summary`),
      artifacts: (runId: Uuid) => client.get<Page<Artifact>>(`/runs/${id(runId)}/artifacts`),
      artifactContentUrl: (artifactId: Uuid) => client.url(`/artifacts/${id(artifactId)}/content`),
    },

    capture: {
      list: (runId: Uuid) =>
        client.get<Page<CaptureSession>>(`/runs/${id(runId)}/capture-sessions`, { limit: 200 }),
      /** 201 with a new session, or 200 with the one already running. */
      start: (runId: Uuid, input: CaptureStartInput = {}) =>
        client.post<CaptureSession>(`/runs/${id(runId)}/capture-sessions`, input),
      get: (sessionId: Uuid) => client.get<CaptureSession>(`/capture-sessions/${id(sessionId)}`),
      /** Runs the flush barrier and answers with the summary; repeated stops answer as is. */
      stop: (sessionId: Uuid) =>
        client.post<CaptureSession>(`/capture-sessions/${id(sessionId)}/stop`),
      remove: (sessionId: Uuid) => client.delete(`/capture-sessions/${id(sessionId)}`),
    },

    sensors: {
      list: (
        projectId: Uuid,
        query: PageQuery & { q?: string; status?: SensorStatus; type?: string } = {},
      ) => client.get<Page<Sensor>>(`/projects/${id(projectId)}/sensors`, { ...query }),
      create: (projectId: Uuid, input: SensorInput) =>
        client.post<SensorWithToken>(`/projects/${id(projectId)}/sensors`, input),
      get: (sensorId: Uuid) => client.get<Sensor>(`/sensors/${id(sensorId)}`),
      update: (sensorId: Uuid, changes: Partial<SensorInput>) =>
        client.patch<Sensor>(`/sensors/${id(sensorId)}`, changes),
      remove: (sensorId: Uuid) => client.delete(`/sensors/${id(sensorId)}`),
      rotateToken: (sensorId: Uuid, grace_period_s = 0) =>
        client.post<SensorWithToken>(`/sensors/${id(sensorId)}/rotate-token`, { grace_period_s }),
      errors: (sensorId: Uuid, query: PageQuery = {}) =>
        client.get<Page<SensorIngestError>>(`/sensors/${id(sensorId)}/errors`, { ...query }),
      setProjects: (sensorId: Uuid, projectIds: Uuid[]) =>
        client.put<{ project_ids: Uuid[] }>(`/sensors/${id(sensorId)}/projects`, {
          project_ids: projectIds,
        }),
    },

    profiles: {
      list: (sensorId: Uuid) =>
        client.get<Page<ConversionProfile>>(`/sensors/${id(sensorId)}/profiles`, { limit: 200 }),
      create: (sensorId: Uuid, input: ProfileInput) =>
        client.post<ConversionProfile>(`/sensors/${id(sensorId)}/profiles`, input),
      applying: (sensorId: Uuid, at: string) =>
        client.get<{ at: string; profile: ConversionProfile | null; conversion_status: string | null }>(
          `/sensors/${id(sensorId)}/profiles/applying`,
          { at },
        ),
      activate: (profileId: Uuid) =>
        client.post<ProfileChange>(`/profiles/${id(profileId)}/activate`),
      schedule: (profileId: Uuid, valid_from: string) =>
        client.post<ProfileChange>(`/profiles/${id(profileId)}/schedule`, { valid_from }),
      deprecate: (profileId: Uuid) =>
        client.post<ProfileChange>(`/profiles/${id(profileId)}/deprecate`),
      backfillPreview: (profileId: Uuid, from?: string | null) =>
        client.post<BackfillPreview>(`/profiles/${id(profileId)}/backfill-preview`, from ? { from } : {}),
      backfill: (profileId: Uuid, from?: string | null) =>
        client.post<BackfillJob>(`/profiles/${id(profileId)}/backfill`, from ? { from } : {}),
      backfills: (profileId: Uuid) =>
        client.get<Page<BackfillJob>>(`/profiles/${id(profileId)}/backfills`),
    },

    telemetry: {
      history: (query: TelemetryQuery & PageQuery) =>
        client.get<Page<TelemetryPoint>>("/telemetry", { ...query }),
      aggregate: (query: AggregateQuery, signal?: AbortSignal) =>
        client.get<AggregateResponse>("/telemetry/aggregate", { ...query }, { signal }),
      /** Ingest with a sensor token (the simulator and tests; browsers never hold one). */
      ingest: (sensorToken: string, points: TelemetryPointIn[]) =>
        client.post<IngestResult>(
          "/telemetry",
          { points },
          { headers: { Authorization: `Bearer ${sensorToken}` } },
        ),
      /** The SSE stream's URL; EventSource sends cookies for the same origin. */
      streamUrl: (
        query: Pick<TelemetryQuery, "sensor_ids" | "run_id" | "capture_session_id"> & {
          value?: ValueKind;
          last_event_id?: string;
        },
      ) => client.url("/telemetry/stream", { ...query }),
      websocketPath: () => `${API_PREFIX}/ws`,
      exportUrl: (query: TelemetryQuery & { format: "csv" | "json" | "parquet" }) =>
        client.url("/telemetry/export", { ...query }),
    },

    comparisons: {
      create: (input: ComparisonInput) => client.post<Comparison>("/comparisons", input),
      get: (comparisonId: Uuid) => client.get<Comparison>(`/comparisons/${id(comparisonId)}`),
      exportUrl: (comparisonId: Uuid, format: "csv" | "json" | "html", part?: "runs" | "telemetry") =>
        client.url(`/comparisons/${id(comparisonId)}/export`, { format, part }),
    },

    webhooks: {
      eventTypes: () => client.get<{ items: string[]; wildcards: string[] }>("/webhooks/event-types"),
      list: (projectId: Uuid) =>
        client.get<Page<Webhook>>(`/projects/${id(projectId)}/webhooks`, { limit: 200 }),
      create: (projectId: Uuid, input: WebhookInput) =>
        client.post<WebhookWithSecret>(`/projects/${id(projectId)}/webhooks`, input),
      update: (webhookId: Uuid, changes: Partial<WebhookInput>) =>
        client.patch<Webhook>(`/webhooks/${id(webhookId)}`, changes),
      remove: (webhookId: Uuid) => client.delete(`/webhooks/${id(webhookId)}`),
      deliveries: (webhookId: Uuid, query: PageQuery & { status?: string } = {}) =>
        client.get<Page<WebhookDelivery>>(`/webhooks/${id(webhookId)}/deliveries`, { ...query }),
      test: (webhookId: Uuid) =>
        client.post<{ webhook_id: Uuid; event_type: string; status: string }>(
          `/webhooks/${id(webhookId)}/test`,
        ),
      rotateSecret: (webhookId: Uuid) =>
        client.post<WebhookWithSecret>(`/webhooks/${id(webhookId)}/rotate-secret`, {}),
    },
  };
}

export type Endpoints = ReturnType<typeof endpoints>;

/** The endpoints bound to the app's client. */
export const backend: Endpoints = endpoints(api);

