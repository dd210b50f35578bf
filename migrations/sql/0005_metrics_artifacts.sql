-- Run metrics, artifacts and comparisons (issue 9). The base tables are in 0001.

-- Metrics -------------------------------------------------------------------------------------

-- A generated sequence number gives every point a unique, stable place in its series: a step
-- may be logged more than once, and cursor pages must still return each point exactly once.
ALTER TABLE run_metrics ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000);
DROP INDEX run_metrics_series_idx;
CREATE INDEX run_metrics_series_idx ON run_metrics (run_id, name, step, seq);

-- One row per (run, metric name), upserted in the transaction that appends the points, so
-- summaries and comparisons never scan a series. "last" is the value at the highest step
-- (then the latest timestamp, then the latest write), like MLflow's latest metric.
CREATE TABLE run_metric_summaries (
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       text NOT NULL,
    count      bigint NOT NULL,
    sum        double precision NOT NULL,
    min        double precision NOT NULL,
    max        double precision NOT NULL,
    first_step bigint NOT NULL,
    last_step  bigint NOT NULL,
    last_value double precision NOT NULL,
    last_ts    timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name)
);

-- Artifacts -----------------------------------------------------------------------------------

-- Which store holds the bytes, so changing the configured store never orphans old artifacts
-- silently; and until when a pre-signed upload may still complete a pending artifact.
ALTER TABLE artifacts
    ADD COLUMN storage text NOT NULL DEFAULT 'local' CHECK (storage IN ('local', 's3')),
    ADD COLUMN upload_expires_at timestamptz;
CREATE INDEX artifacts_pending_idx ON artifacts (created_at) WHERE status = 'pending';

-- Comparisons ---------------------------------------------------------------------------------

CREATE INDEX comparisons_created_by_idx ON comparisons (created_by, created_at DESC);
