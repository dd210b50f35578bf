// Typed models for every resource of the HTTP API v1 (shared/api.md). Timestamps are ISO-8601
// strings with an offset, ids are UUID strings. Fields may grow; none is ever renamed silently.

export type Uuid = string;
export type Timestamp = string;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** `{"items": [...], "next_cursor": ...}`, the shape of every list. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** `{"error": {...}}`, the one error shape of every failed response. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    details: ErrorDetails;
    request_id: string | null;
  };
}

export interface FieldIssue {
  loc: string[];
  message: string;
}

export interface ErrorDetails {
  field?: string;
  fields?: FieldIssue[];
  reason?: string;
  [key: string]: unknown;
}

// --- identity -------------------------------------------------------------------------------

export interface User {
  id: Uuid;
  email: string;
  display_name: string;
  created_at: Timestamp;
}

export interface SignedIn {
  user: User;
  csrf_token: string;
}

export type AuthVia = "session" | "token" | string;

export interface Me {
  user: User;
  auth: AuthVia;
  csrf_token?: string;
}

export interface UserSession {
  id: Uuid;
  created_at: Timestamp;
  last_seen_at: Timestamp | null;
  expires_at: Timestamp;
  user_agent: string | null;
  client_ip: string | null;
  current: boolean;
}

export interface ApiToken {
  id: Uuid;
  name: string;
  preview: string;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

/** POST /auth/tokens: the only response that carries the token itself. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

export interface RegisterInput {
  email: string;
  display_name: string;
  password: string;
}

export interface LoginInput {
  email: string;
  password: string;
}

// --- projects, members, audit ---------------------------------------------------------------

export const ROLES = ["viewer", "editor", "owner"] as const;
export type Role = (typeof ROLES)[number];

export interface Project {
  id: Uuid;
  name: string;
  description: string;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** The caller's role; present on list items and single reads. */
  role?: Role;
}

export interface ProjectInput {
  name: string;
  description?: string;
}

export interface Member {
  user_id: Uuid;
  email: string;
  display_name: string;
  role: Role;
  created_at: Timestamp;
}

export interface AuditEvent {
  id: number;
  project_id: Uuid | null;
  actor_id: Uuid | null;
  actor_role: Role | null;
  action: string;
  entity_type: string;
  entity_id: string | null;
  before: JsonObject | null;
  after: JsonObject | null;
  request_id: string | null;
  created_at: Timestamp;
}

export interface AuditFilter {
  entity_type?: string;
  entity_id?: string;
  actor_id?: Uuid;
  from?: Timestamp;
  to?: Timestamp;
}

// --- experiments and runs (api/experiments.py, api/runs.py) -----------------------------------

export const EXPERIMENT_STATUSES = ["active", "archived"] as const;
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number];

export interface Experiment {
  id: Uuid;
  project_id: Uuid;
  name: string;
  description: string;
  experiment_type: string;
  status: ExperimentStatus;
  tags: string[];
  metadata: JsonObject;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  archived_at: Timestamp | null;
}

export interface ExperimentInput {
  name: string;
  description?: string;
  experiment_type?: string;
  tags?: string[];
  metadata?: JsonObject;
}

/** Filters shared by the experiment and run listings and their exports. */
export interface ListFilter {
  status?: string[];
  tags?: string[];
  q?: string;
  created_after?: Timestamp;
  created_before?: Timestamp;
}

export const RUN_STATUSES = ["draft", "running", "succeeded", "failed", "archived"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** The moves `POST /runs/{rid}/status` accepts (core/runs.py RUN_TRANSITIONS). */
export const RUN_TRANSITIONS: Record<RunStatus, RunStatus[]> = {
  draft: ["running"],
  running: ["succeeded", "failed"],
  succeeded: ["archived"],
  failed: ["archived"],
  archived: [],
};

export interface Run {
  id: Uuid;
  experiment_id: Uuid;
  project_id: Uuid;
  name: string;
  status: RunStatus;
  params: JsonObject;
  env: JsonObject;
  git_sha: string | null;
  tags: string[];
  notes: string;
  metadata: JsonObject;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  duration_seconds: number | null;
}

export interface RunInput {
  name: string;
  params?: JsonObject;
  env?: JsonObject;
  git_sha?: string | null;
  tags?: string[];
  notes?: string;
  metadata?: JsonObject;
}

export type RunSort = "-created_at" | "created_at" | "name" | "-name";

export interface RunFilter extends ListFilter {
  experiment_id?: Uuid;
  sort?: RunSort;
}

/** A refused bulk change: 409 with one entry per failing run; nothing was changed. */
export interface BulkFailure {
  run_id: Uuid;
  code: string;
  message: string;
  [key: string]: unknown;
}

/** A run's attached sensor (`GET /runs/{rid}/sensors`). */
export interface RunSensor {
  id: Uuid;
  project_id: Uuid;
  name: string;
  type: string;
  input_unit: string;
  display_unit: string;
  expected_rate_hz: number | null;
}

// --- metrics, artifacts (api/metrics.py, api/artifacts.py) -------------------------------------

export interface RunMetricPoint {
  name: string;
  step: number;
  value: number;
  ts: Timestamp;
}

export interface RunMetricSummary {
  name: string;
  count: number;
  last: number | null;
  min: number | null;
  max: number | null;
  avg: number | null;
  first_step: number | null;
  last_step: number | null;
  last_ts: Timestamp | null;
}

export interface MetricBucket {
  step: number;
  first_step: number;
  last_step: number;
  count: number;
  min: number;
  max: number;
  avg: number;
  first: number;
  last: number;
}

export interface MetricSeries {
  name: string;
  bucket_steps: number | null;
  step_from: number | null;
  step_to: number | null;
  buckets: MetricBucket[];
}

export interface MetricsDownsampled {
  run_id: Uuid;
  max_points: number;
  truncated: boolean;
  series: MetricSeries[];
}

export interface Artifact {
  id: Uuid;
  run_id: Uuid;
  project_id: Uuid;
  name: string;
  type?: string;
  size_bytes: number | null;
  sha256: string | null;
  content_type: string | null;
  metadata?: JsonObject;
  status: string;
  created_by: Uuid | null;
  created_at: Timestamp;
}

// --- comparisons (api/comparisons.py) -----------------------------------------------------------

export interface ComparisonRun {
  id: Uuid;
  name: string;
  status: RunStatus;
  project_id: Uuid;
  experiment_id: Uuid;
  experiment_name: string;
  tags: string[];
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  duration_seconds: number | null;
}

export interface ParamRow {
  key: string;
  values: Record<Uuid, Json>;
  differs: boolean;
}

export interface MetricStats {
  last: number;
  min: number;
  max: number;
  avg: number;
}

export interface MetricRunEntry extends MetricStats {
  count: number;
  last_step: number;
  delta: MetricStats | null;
  delta_pct_last: number | null;
}

export interface MetricRow {
  name: string;
  baseline_present: boolean;
  runs: Record<Uuid, MetricRunEntry | null>;
}

export interface OverlayBucket {
  offset_s: number;
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
}

export interface OverlaySeries {
  run_id: Uuid;
  capture_session_id: Uuid;
  session_ordinal: number;
  session_status: CaptureStatus;
  sensor_id: Uuid;
  sensor_name: string;
  unit: string;
  source: string;
  profile_versions: { version: number; status: string; from_offset_s: number; to_offset_s: number }[];
  buckets: OverlayBucket[];
}

export interface ComparisonTelemetry {
  value: "physical";
  max_points: number;
  bucket_ms: number | null;
  duration_s: number;
  sessions_total: number;
  truncated: boolean;
  series: OverlaySeries[];
}

export interface Comparison {
  id: Uuid;
  created_by: Uuid | null;
  created_at: Timestamp;
  computed_at: Timestamp;
  run_ids: Uuid[];
  baseline_run_id: Uuid;
  options: JsonObject;
  runs: ComparisonRun[];
  params: ParamRow[];
  metrics: MetricRow[];
  telemetry: ComparisonTelemetry | null;
}

export interface ComparisonInput {
  run_ids: Uuid[];
  baseline_run_id?: Uuid | null;
  max_points?: number;
  metric_names?: string[] | null;
  capture_session_ids?: Uuid[] | null;
  telemetry?: boolean;
}

// --- capture sessions (api/capture.py) ------------------------------------------------------------

export const CAPTURE_STATUSES = [
  "draft",
  "running",
  "succeeded",
  "failed",
  "archived",
  "backfilling",
] as const;
export type CaptureStatus = (typeof CAPTURE_STATUSES)[number];

export interface CaptureGap {
  start: Timestamp;
  end: Timestamp;
  seconds: number;
}

export interface CaptureSensorSummary {
  sensor_id: Uuid;
  name: string;
  points: number;
  first_ts: Timestamp | null;
  last_ts: Timestamp | null;
  late_points: number;
  expected_points: number | null;
  coverage: number | null;
  gaps: CaptureGap[];
  gap_count: number;
}

/** Written by the stop barrier (actors/capture.py). */
export interface CaptureSummary {
  duration_s?: number;
  points?: number;
  coverage?: number | null;
  sensors?: CaptureSensorSummary[];
  unflushed_sensors?: string[];
  [key: string]: unknown;
}

export interface CaptureSession {
  id: Uuid;
  run_id: Uuid;
  project_id: Uuid;
  ordinal: number;
  status: CaptureStatus;
  previous_status: CaptureStatus | null;
  started_at: Timestamp | null;
  stopped_at: Timestamp | null;
  duration_seconds: number | null;
  notes: string;
  summary: CaptureSummary | null;
  failure_reason: string | null;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CaptureStartInput {
  notes?: string;
}

// --- sensors and conversion profiles (api/sensors.py, api/profiles.py, api/backfill.py) --------

export const SENSOR_STATUSES = ["online", "delayed", "offline", "never_seen"] as const;
export type SensorStatus = (typeof SENSOR_STATUSES)[number];

export interface Sensor {
  id: Uuid;
  project_id: Uuid;
  name: string;
  type: string;
  input_unit: string;
  display_unit: string;
  expected_rate_hz: number | null;
  description: string;
  token_preview: string;
  previous_token_expires_at: Timestamp | null;
  rate_points_per_s: number | null;
  burst_points: number | null;
  last_seen_at: Timestamp | null;
  status: SensorStatus;
  points_last_minute: number;
  /** Seen through a share, not from its home project. */
  shared: boolean;
  shared_project_ids?: Uuid[];
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SensorInput {
  name: string;
  type?: string;
  input_unit?: string;
  display_unit?: string;
  expected_rate_hz?: number | null;
  description?: string;
  rate_points_per_s?: number | null;
  burst_points?: number | null;
}

/** Create and rotate-token answers: the token itself is in this response only. */
export interface SensorWithToken extends Sensor {
  token: string;
}

export interface SensorIngestError {
  id: number;
  created_at: Timestamp;
  code: string;
  message: string;
  point_index: number | null;
  sample: Json;
}

export const PROFILE_KINDS = ["linear", "polynomial", "table"] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];
export type ProfileStatus = "draft" | "active" | "scheduled" | "deprecated";

export interface ConversionProfile {
  id: Uuid;
  sensor_id: Uuid;
  version: number;
  kind: ProfileKind;
  payload: JsonObject;
  status: ProfileStatus;
  valid_from: Timestamp | null;
  valid_to: Timestamp | null;
  description: string;
  created_by: Uuid | null;
  created_at: Timestamp;
  activated_at: Timestamp | null;
}

/** activate / schedule / deprecate: the profile plus what the sensor converts with now. */
export interface ProfileChange extends ConversionProfile {
  sensor_active_profile_id: Uuid | null;
  deprecated_profile_id: Uuid | null;
  notice?: string;
}

export interface ProfileInput {
  kind: ProfileKind;
  payload: JsonObject;
  description?: string;
}

export interface ValueStats {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

export interface BackfillPreview {
  profile_id: Uuid;
  sensor_id: Uuid;
  from: Timestamp;
  to: Timestamp;
  extends_window: boolean;
  rows_in_range: number;
  rows_changing: number;
  sampled: boolean;
  rows_examined: number;
  sessions: { capture_session_id: Uuid; rows: number; before: ValueStats; after: ValueStats }[];
}

export interface BackfillJob {
  id: Uuid;
  profile_id: Uuid;
  sensor_id: Uuid;
  status: string;
  range_from: Timestamp;
  range_to: Timestamp;
  rows_total: number | null;
  rows_done: number;
  rows_changed: number;
  chunks_done: number;
  session_ids: Uuid[];
  attempts: number;
  error: string | null;
  created_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  progress: number;
}

// --- telemetry (api/ingest.py, api/history.py, api/live.py) ---------------------------------------

export type ValueKind = "raw" | "physical";

export interface TelemetryPointIn {
  ts: Timestamp;
  value: number;
  meta?: JsonObject;
}

export interface IngestResult {
  accepted: number;
  rejected: { index: number; code: string; message: string }[];
}

export interface TelemetryPoint {
  sensor_id: Uuid;
  ts: Timestamp;
  value: number | null;
  profile_version: number | null;
  conversion_status: string | null;
  run_id: Uuid | null;
  capture_session_id: Uuid | null;
}

export interface TelemetryQuery {
  sensor_ids?: Uuid[];
  run_id?: Uuid;
  capture_session_id?: Uuid;
  from?: Timestamp;
  to?: Timestamp;
  value?: ValueKind;
}

export interface AggregateBucket {
  t: Timestamp;
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  first: number | null;
  last: number | null;
  offset_s?: number;
}

export interface AggregateResponse {
  bucket_ms: number;
  source: string;
  value: ValueKind;
  from: Timestamp;
  to: Timestamp;
  origin: Timestamp;
  series: { sensor_id: Uuid; buckets: AggregateBucket[] }[];
}

export interface AggregateQuery extends TelemetryQuery {
  max_points?: number;
  relative?: boolean;
}

/** An SSE/WebSocket point: `[ts_us, value, profile_version, conversion_status]`. */
export type LivePoint = [number, number | null, number | null, string];

export interface LivePointsEvent {
  sensor_id: Uuid;
  points: LivePoint[];
  seq: number;
  dropped?: number;
}

export type ExportFormat = "csv" | "json" | "parquet";

export interface ExportJob {
  id: Uuid;
  status: string;
  [key: string]: unknown;
}

// --- webhooks (api/webhooks.py) -----------------------------------------------------------------

export interface Webhook {
  id: Uuid;
  project_id: Uuid;
  url: string;
  event_types: string[];
  is_active: boolean;
  description: string;
  secret_preview: string;
  previous_secret_expires_at: Timestamp | null;
  created_by: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookInput {
  url: string;
  event_types: string[];
  is_active?: boolean;
  description?: string;
}

export interface WebhookWithSecret extends Webhook {
  secret: string;
}

export interface WebhookDelivery {
  id: number;
  message_id: Uuid;
  webhook_id: string;
  event_type: string;
  attempt: number;
  status: "succeeded" | "failed" | "retrying";
  response_code: number | null;
  latency_ms: number | null;
  response_body: string | null;
  error: string | null;
  created_at: Timestamp;
}
