"""The telemetry write path's SQL: stage by COPY, insert once, roll up per minute, heartbeat."""

from __future__ import annotations

TELEMETRY_COLUMNS = (
    "sensor_id",
    "ts",
    "raw_value",
    "physical_value",
    "conversion_status",
    "profile_version",
    "run_id",
    "capture_session_id",
    "meta",
    "received_at",
)

CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_in (
    sensor_id uuid, ts timestamptz, raw_value double precision,
    physical_value double precision, conversion_status text, profile_version integer,
    run_id uuid, capture_session_id uuid, meta jsonb, received_at timestamptz
) ON COMMIT DELETE ROWS
"""

# Points are unique by (sensor, ts): a retried batch inserts nothing twice. Only the rows
# really inserted feed the rollups, so counts stay exact under retries.
MERGE_STAGED = """
WITH ins AS (
    INSERT INTO telemetry (sensor_id, ts, raw_value, physical_value, conversion_status,
                           profile_version, run_id, capture_session_id, meta, received_at)
    SELECT sensor_id, ts, raw_value, physical_value, conversion_status, profile_version,
           run_id, capture_session_id, meta, received_at
    FROM telemetry_in
    ON CONFLICT (sensor_id, ts) DO NOTHING
    RETURNING sensor_id, ts, raw_value, physical_value, capture_session_id
), minute AS (
    INSERT INTO telemetry_1m AS t (sensor_id, bucket, count, raw_sum, raw_min, raw_max,
        raw_first, raw_last, phys_count, phys_sum, phys_min, phys_max, phys_first, phys_last,
        first_ts, last_ts)
    SELECT sensor_id, date_trunc('minute', ts), count(*), sum(raw_value), min(raw_value),
           max(raw_value),
           (array_agg(raw_value ORDER BY ts))[1], (array_agg(raw_value ORDER BY ts DESC))[1],
           count(physical_value), sum(physical_value), min(physical_value), max(physical_value),
           (array_agg(physical_value ORDER BY ts))[1],
           (array_agg(physical_value ORDER BY ts DESC))[1],
           min(ts), max(ts)
    FROM ins GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE SET
        count = t.count + excluded.count,
        raw_sum = t.raw_sum + excluded.raw_sum,
        raw_min = least(t.raw_min, excluded.raw_min),
        raw_max = greatest(t.raw_max, excluded.raw_max),
        raw_first = CASE WHEN excluded.first_ts < t.first_ts THEN excluded.raw_first
                         ELSE t.raw_first END,
        raw_last = CASE WHEN excluded.last_ts > t.last_ts THEN excluded.raw_last
                        ELSE t.raw_last END,
        phys_count = t.phys_count + excluded.phys_count,
        phys_sum = CASE WHEN t.phys_sum IS NULL THEN excluded.phys_sum
                        WHEN excluded.phys_sum IS NULL THEN t.phys_sum
                        ELSE t.phys_sum + excluded.phys_sum END,
        phys_min = least(t.phys_min, excluded.phys_min),
        phys_max = greatest(t.phys_max, excluded.phys_max),
        phys_first = CASE WHEN excluded.first_ts < t.first_ts THEN excluded.phys_first
                          ELSE t.phys_first END,
        phys_last = CASE WHEN excluded.last_ts > t.last_ts THEN excluded.phys_last
                         ELSE t.phys_last END,
        first_ts = least(t.first_ts, excluded.first_ts),
        last_ts = greatest(t.last_ts, excluded.last_ts)
    RETURNING 1
), session_minute AS (
    INSERT INTO telemetry_session_1m AS t (capture_session_id, sensor_id, bucket, count,
        raw_sum, raw_min, raw_max, phys_count, phys_sum, phys_min, phys_max, first_ts, last_ts)
    SELECT capture_session_id, sensor_id, date_trunc('minute', ts), count(*), sum(raw_value),
           min(raw_value), max(raw_value), count(physical_value), sum(physical_value),
           min(physical_value), max(physical_value), min(ts), max(ts)
    FROM ins WHERE capture_session_id IS NOT NULL GROUP BY 1, 2, 3
    ON CONFLICT (capture_session_id, sensor_id, bucket) DO UPDATE SET
        count = t.count + excluded.count,
        raw_sum = t.raw_sum + excluded.raw_sum,
        raw_min = least(t.raw_min, excluded.raw_min),
        raw_max = greatest(t.raw_max, excluded.raw_max),
        phys_count = t.phys_count + excluded.phys_count,
        phys_sum = CASE WHEN t.phys_sum IS NULL THEN excluded.phys_sum
                        WHEN excluded.phys_sum IS NULL THEN t.phys_sum
                        ELSE t.phys_sum + excluded.phys_sum END,
        phys_min = least(t.phys_min, excluded.phys_min),
        phys_max = greatest(t.phys_max, excluded.phys_max),
        first_ts = least(t.first_ts, excluded.first_ts),
        last_ts = greatest(t.last_ts, excluded.last_ts)
    RETURNING 1
), heartbeat AS (
    UPDATE sensors SET last_seen_at = now()
    WHERE id = ANY($1::uuid[]) AND (last_seen_at IS NULL OR last_seen_at < now())
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted,
       CASE WHEN (SELECT count(*) FROM ins) < $2
            THEN (SELECT coalesce(array_agg(sensor_id::text || '/'
                                   || (extract(epoch FROM ts) * 1000000)::bigint::text), '{}')
                  FROM ins)
       END AS inserted_keys,
       (SELECT count(*) FROM minute) + (SELECT count(*) FROM session_minute)
           + (SELECT count(*) FROM heartbeat) AS touched
"""

SESSION_WINDOWS = """
SELECT cs.id, cs.run_id, cs.started_at, cs.stopped_at
FROM capture_sessions cs JOIN run_sensors rs ON rs.run_id = cs.run_id
WHERE rs.sensor_id = $1 AND cs.started_at IS NOT NULL
  AND (cs.status IN ('running', 'backfilling')
       OR cs.stopped_at > now() - make_interval(secs => $2))
ORDER BY cs.started_at
"""

APPLICABLE_PROFILES = """
SELECT id, version, kind, payload, status, valid_from, valid_to, activated_at
FROM conversion_profiles WHERE sensor_id = $1 AND status <> 'draft'
"""
