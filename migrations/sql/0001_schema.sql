-- ETP schema skeleton. Forward-only: later changes come as new numbered files.
-- TimescaleDB is used when the server offers it; everything also works on plain PostgreSQL.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$$;

-- Identity -----------------------------------------------------------------------------------

CREATE TABLE users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text NOT NULL,
    display_name        text NOT NULL,
    password_hash       text NOT NULL,
    is_active           boolean NOT NULL DEFAULT true,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_normalised CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE user_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL UNIQUE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    user_agent   text,
    client_ip    text,
    revoked_at   timestamptz
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    preview      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE password_resets (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE TABLE mail_outbox (
    id         bigserial PRIMARY KEY,
    to_email   text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);

-- Projects -----------------------------------------------------------------------------------

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE project_members (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);

-- Experiments, runs, capture sessions -------------------------------------------------------

CREATE TABLE experiments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    experiment_type text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    tags            text[] NOT NULL DEFAULT '{}',
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz
);
CREATE INDEX experiments_project_idx ON experiments (project_id, created_at DESC, id DESC);

CREATE TABLE runs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    experiment_id uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'running', 'succeeded', 'failed', 'archived')),
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    env           jsonb NOT NULL DEFAULT '{}'::jsonb,
    git_sha       text,
    tags          text[] NOT NULL DEFAULT '{}',
    notes         text NOT NULL DEFAULT '',
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX runs_experiment_idx ON runs (experiment_id, created_at DESC, id DESC);
CREATE INDEX runs_project_idx ON runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_tags_idx ON runs USING gin (tags);

CREATE TABLE capture_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id          uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    ordinal         integer NOT NULL,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'succeeded', 'failed', 'archived',
                                      'backfilling')),
    previous_status text,
    started_at      timestamptz,
    stopped_at      timestamptz,
    notes           text NOT NULL DEFAULT '',
    summary         jsonb,
    failure_reason  text,
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, ordinal)
);
-- At most one running capture session per run, enforced by the database.
CREATE UNIQUE INDEX capture_sessions_one_running ON capture_sessions (run_id)
    WHERE status = 'running';

-- Sensors and conversion profiles -----------------------------------------------------------

CREATE TABLE sensors (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id                uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                      text NOT NULL,
    type                      text NOT NULL DEFAULT '',
    input_unit                text NOT NULL DEFAULT '',
    display_unit              text NOT NULL DEFAULT '',
    expected_rate_hz          double precision CHECK (expected_rate_hz IS NULL OR expected_rate_hz > 0),
    description               text NOT NULL DEFAULT '',
    token_hash                bytea NOT NULL UNIQUE,
    token_preview             text NOT NULL,
    previous_token_hash       bytea,
    previous_token_expires_at timestamptz,
    rate_points_per_s         double precision,
    burst_points              integer,
    last_seen_at              timestamptz,
    reported_status           text NOT NULL DEFAULT 'never_seen',
    created_by                uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sensors_project_idx ON sensors (project_id, created_at DESC, id DESC);
CREATE INDEX sensors_previous_token_idx ON sensors (previous_token_hash)
    WHERE previous_token_hash IS NOT NULL;

CREATE TABLE sensor_projects (
    sensor_id  uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, project_id)
);
CREATE INDEX sensor_projects_project_idx ON sensor_projects (project_id);

CREATE TABLE run_sensors (
    run_id    uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    sensor_id uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, sensor_id)
);
CREATE INDEX run_sensors_sensor_idx ON run_sensors (sensor_id);

CREATE TABLE conversion_profiles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id    uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('linear', 'polynomial', 'table')),
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'active', 'scheduled', 'deprecated')),
    valid_from   timestamptz,
    valid_to     timestamptz,
    description  text NOT NULL DEFAULT '',
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    UNIQUE (sensor_id, version)
);
-- Exactly one active profile per sensor at any instant.
CREATE UNIQUE INDEX conversion_profiles_one_active ON conversion_profiles (sensor_id)
    WHERE status = 'active';

CREATE TABLE sensor_ingest_errors (
    id          bigserial PRIMARY KEY,
    sensor_id   uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    code        text NOT NULL,
    message     text NOT NULL,
    point_index integer,
    sample      text
);
CREATE INDEX sensor_ingest_errors_sensor_idx ON sensor_ingest_errors (sensor_id, id DESC);

-- Telemetry ----------------------------------------------------------------------------------

CREATE TABLE telemetry (
    sensor_id          uuid NOT NULL,
    ts                 timestamptz NOT NULL,
    raw_value          double precision NOT NULL,
    physical_value     double precision,
    conversion_status  text NOT NULL DEFAULT 'ok',
    profile_version    integer,
    run_id             uuid,
    capture_session_id uuid,
    meta               jsonb,
    received_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, ts)
);
CREATE INDEX telemetry_session_idx ON telemetry (capture_session_id, ts)
    WHERE capture_session_id IS NOT NULL;
CREATE INDEX telemetry_run_idx ON telemetry (run_id, ts) WHERE run_id IS NOT NULL;

-- Per-minute rollups, upserted by every flush (works on plain PostgreSQL too).
CREATE TABLE telemetry_1m (
    sensor_id    uuid NOT NULL,
    bucket       timestamptz NOT NULL,
    count        bigint NOT NULL,
    raw_sum      double precision NOT NULL,
    raw_min      double precision NOT NULL,
    raw_max      double precision NOT NULL,
    raw_first    double precision NOT NULL,
    raw_last     double precision NOT NULL,
    phys_count   bigint NOT NULL DEFAULT 0,
    phys_sum     double precision,
    phys_min     double precision,
    phys_max     double precision,
    phys_first   double precision,
    phys_last    double precision,
    first_ts     timestamptz NOT NULL,
    last_ts      timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);

CREATE TABLE telemetry_session_1m (
    capture_session_id uuid NOT NULL,
    sensor_id          uuid NOT NULL,
    bucket             timestamptz NOT NULL,
    count              bigint NOT NULL,
    raw_sum            double precision NOT NULL,
    raw_min            double precision NOT NULL,
    raw_max            double precision NOT NULL,
    phys_count         bigint NOT NULL DEFAULT 0,
    phys_sum           double precision,
    phys_min           double precision,
    phys_max           double precision,
    first_ts           timestamptz NOT NULL,
    last_ts            timestamptz NOT NULL,
    PRIMARY KEY (capture_session_id, sensor_id, bucket)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('telemetry', 'ts', chunk_time_interval => interval '1 day');
    END IF;
END
$$;

-- Run metrics, artifacts, comparisons -------------------------------------------------------

CREATE TABLE run_metrics (
    run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   text NOT NULL,
    step   bigint NOT NULL DEFAULT 0,
    value  double precision NOT NULL,
    ts     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_metrics_series_idx ON run_metrics (run_id, name, step, ts);

CREATE TABLE artifacts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id       uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL,
    type         text NOT NULL DEFAULT 'file',
    size_bytes   bigint NOT NULL DEFAULT 0,
    sha256       text,
    content_type text NOT NULL DEFAULT 'application/octet-stream',
    storage_key  text NOT NULL UNIQUE,
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready')),
    approved_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    approved_at  timestamptz,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_run_idx ON artifacts (run_id, created_at DESC);

CREATE TABLE comparisons (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    run_ids         uuid[] NOT NULL,
    baseline_run_id uuid,
    options         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Webhooks, outbox, exports ----------------------------------------------------------------

CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    project_id  uuid REFERENCES projects (id) ON DELETE CASCADE,
    event_type  text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    enqueued_at timestamptz,
    done_at     timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE done_at IS NULL;

CREATE TABLE webhook_subscriptions (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id                 uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url                        text NOT NULL,
    event_types                text[] NOT NULL DEFAULT '{}',
    is_active                  boolean NOT NULL DEFAULT true,
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_by                 uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    outbox_id       bigint REFERENCES outbox (id) ON DELETE SET NULL,
    webhook_id      text NOT NULL,
    event_type      text NOT NULL,
    attempt         integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('succeeded', 'failed', 'retrying')),
    response_code   integer,
    latency_ms      double precision,
    response_body   text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_subscription_idx ON webhook_deliveries (subscription_id, id DESC);

CREATE TABLE exports (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    requested_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    kind          text NOT NULL,
    format        text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress      double precision NOT NULL DEFAULT 0,
    storage_key   text,
    row_count     bigint,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- Audit and idempotency --------------------------------------------------------------------

CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    project_id  uuid,
    actor_id    uuid,
    actor_role  text,
    action      text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text,
    before      jsonb,
    after       jsonb,
    request_id  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_project_idx ON audit_events (project_id, created_at DESC, id DESC);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);

CREATE TABLE idempotency_keys (
    scope         text NOT NULL,
    route         text NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    state         text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress', 'done')),
    status_code   integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (scope, route, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
