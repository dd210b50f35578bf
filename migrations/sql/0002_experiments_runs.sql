-- Experiments, runs and capture sessions (issue 4): indexes for the listing filters, text
-- search and sorts. The tables themselves are in 0001.

-- Text search (`q`) is a case-insensitive substring match; trigram indexes serve ILIKE
-- '%...%'. pg_trgm ships with PostgreSQL's contrib; without it the filters still work
-- (sequential scans within one project).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    END IF;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX experiments_name_trgm_idx ON experiments USING gin (name gin_trgm_ops);
        CREATE INDEX experiments_description_trgm_idx
            ON experiments USING gin (description gin_trgm_ops);
        CREATE INDEX runs_name_trgm_idx ON runs USING gin (name gin_trgm_ops);
        CREATE INDEX runs_notes_trgm_idx ON runs USING gin (notes gin_trgm_ops);
    END IF;
END
$$;

-- Tag filters ("all of": tags @> ARRAY[...]).
CREATE INDEX experiments_tags_idx ON experiments USING gin (tags);

-- Status filters and the name sort, per experiment and per project.
CREATE INDEX runs_project_status_idx ON runs (project_id, status, created_at DESC, id DESC);
CREATE INDEX runs_experiment_name_idx ON runs (experiment_id, name, id);
CREATE INDEX runs_project_name_idx ON runs (project_id, name, id);

-- "Is any run of this experiment running?" (archive and delete refusals).
CREATE INDEX runs_running_idx ON runs (experiment_id) WHERE status = 'running';

-- A finished run cannot end before it started.
ALTER TABLE runs ADD CONSTRAINT runs_finished_after_started
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at);
ALTER TABLE capture_sessions ADD CONSTRAINT capture_sessions_stopped_after_started
    CHECK (stopped_at IS NULL OR started_at IS NULL OR stopped_at >= started_at);
