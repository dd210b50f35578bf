-- Workers (issue 8): outbox relay bookkeeping, webhook messages with their own retry state,
-- export job leases, backfill jobs with per-chunk progress. The base tables are in 0001.
--
-- Every job the worker runs is driven by a row here; arq only carries "look at row X now".
-- A job claims its row with a compare-and-set on a counter (``attempts`` / ``lease_token``),
-- so a duplicate or stale job is a no-op, and a sweep re-enqueues rows whose lease expired
-- (a worker died) under a new job id (``enqueue_gen`` / ``attempts`` are part of it): arq
-- keeps a dead worker's job marked in progress for an hour, and the same id would stay stuck.

-- Outbox: the relay fans each event out into webhook_messages and marks the row done.
ALTER TABLE outbox ADD COLUMN relay_attempts integer NOT NULL DEFAULT 0;

-- Subscriptions: a free-text description for people managing them.
ALTER TABLE webhook_subscriptions ADD COLUMN description text NOT NULL DEFAULT '';
CREATE INDEX webhook_subscriptions_project_idx
    ON webhook_subscriptions (project_id, created_at DESC, id DESC);

-- One message per (event, subscription): its webhook-id is stable across retries and the
-- body is frozen, so every attempt sends the same bytes.
CREATE TABLE webhook_messages (
    id              bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    outbox_id       bigint REFERENCES outbox (id) ON DELETE SET NULL,
    webhook_id      text NOT NULL UNIQUE,
    event_type      text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    enqueued_at     timestamptz,
    enqueue_gen     integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (outbox_id, subscription_id)
);
CREATE INDEX webhook_messages_open_idx ON webhook_messages (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX webhook_messages_finished_idx ON webhook_messages (finished_at)
    WHERE finished_at IS NOT NULL;

ALTER TABLE webhook_deliveries
    ADD COLUMN message_id bigint REFERENCES webhook_messages (id) ON DELETE CASCADE,
    ADD CONSTRAINT webhook_deliveries_one_per_attempt UNIQUE (message_id, attempt);

-- Exports: a lease for crash recovery, the file's size and checksum, and an 'expired' state
-- once retention removed the file.
ALTER TABLE exports
    DROP CONSTRAINT exports_status_check,
    ADD CONSTRAINT exports_status_check
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired')),
    ADD COLUMN lease_token integer NOT NULL DEFAULT 0,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN size_bytes bigint,
    ADD COLUMN sha256 text;
CREATE INDEX exports_open_idx ON exports (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX exports_requester_idx ON exports (requested_by, created_at DESC);

-- Backfills: recompute physical values of one sensor over [range_from, range_to) in chunks of
-- ``chunk_points`` points. ``cursor_ts`` is the last timestamp done (inclusive); each finished
-- chunk is a row of backfill_chunks written in the chunk's own transaction.
CREATE TABLE backfill_jobs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id   uuid NOT NULL REFERENCES conversion_profiles (id) ON DELETE CASCADE,
    sensor_id    uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    range_from   timestamptz NOT NULL,
    range_to     timestamptz NOT NULL,
    chunk_points integer NOT NULL CHECK (chunk_points > 0),
    rows_total   bigint NOT NULL DEFAULT 0,
    rows_done    bigint NOT NULL DEFAULT 0,
    rows_changed bigint NOT NULL DEFAULT 0,
    chunks_done  integer NOT NULL DEFAULT 0,
    cursor_ts    timestamptz,
    session_ids  uuid[] NOT NULL DEFAULT '{}',
    lease_token  integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    error        text,
    request_id   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CONSTRAINT backfill_jobs_range_order CHECK (range_to >= range_from)
);
-- One backfill at a time per sensor.
CREATE UNIQUE INDEX backfill_jobs_one_open ON backfill_jobs (sensor_id)
    WHERE status IN ('queued', 'running');
CREATE INDEX backfill_jobs_profile_idx ON backfill_jobs (profile_id, created_at DESC, id DESC);

CREATE TABLE backfill_chunks (
    backfill_id uuid NOT NULL REFERENCES backfill_jobs (id) ON DELETE CASCADE,
    chunk_no    integer NOT NULL,
    ts_from     timestamptz NOT NULL,
    ts_to       timestamptz NOT NULL,
    row_count   integer NOT NULL,
    changed     integer NOT NULL,
    lease_token integer NOT NULL,
    done_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (backfill_id, chunk_no)
);
