"""Telemetry rewrites: backfill jobs and their chunks, point updates, and the per-minute rollups
refreshed after a rewrite (backfills and retention).

Rollups are refreshed without blocking ingest: a minute's physical columns are replaced only
when the row's ``count`` equals the number of points the refresh aggregated, i.e. the row holds
exactly the points this statement saw. A writer that added points meanwhile changed ``count``;
the minute is simply aggregated again by a fresh statement (READ COMMITTED gives each statement
a new snapshot). A writer that comes after the refresh adds its points on top, as always.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

JOB_COLUMNS = (
    "id, profile_id, sensor_id, project_id, requested_by, status, range_from, range_to, "
    "chunk_points, rows_total, rows_done, rows_changed, chunks_done, cursor_ts, session_ids, "
    "lease_token, attempts, lease_until, error, request_id, created_at, started_at, updated_at, "
    "finished_at"
)
REFRESH_ROUNDS = 5


async def insert_job(
    conn: asyncpg.Connection,
    *,
    profile_id: UUID,
    sensor_id: UUID,
    project_id: UUID,
    requested_by: UUID | None,
    range_from: datetime,
    range_to: datetime,
    chunk_points: int,
    session_ids: Sequence[UUID],
    request_id: str | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO backfill_jobs (profile_id, sensor_id, project_id, requested_by, range_from, "
        "range_to, chunk_points, session_ids, request_id) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {JOB_COLUMNS}",
        profile_id,
        sensor_id,
        project_id,
        requested_by,
        range_from,
        range_to,
        chunk_points,
        list(session_ids),
        request_id,
    )
    assert row is not None
    return row


async def fetch_job(
    conn: asyncpg.Connection, *, backfill_id: UUID, lease_token: int | None = None
) -> Record | None:
    """The job; with ``lease_token``, locked and only while that token holds the lease."""
    if lease_token is None:
        return await conn.fetchrow(
            f"SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE id = $1", backfill_id
        )
    return await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE id = $1 AND lease_token = $2 "
        "AND status = 'running' FOR UPDATE",
        backfill_id,
        lease_token,
    )


async def lock_open_job(conn: asyncpg.Connection, *, backfill_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE id = $1 "
        "AND status IN ('queued', 'running') FOR UPDATE",
        backfill_id,
    )


async def list_jobs(
    conn: asyncpg.Connection, *, profile_id: UUID, limit: int, before: tuple[datetime, UUID] | None
) -> list[Record]:
    return await conn.fetch(
        f"SELECT {JOB_COLUMNS} FROM backfill_jobs WHERE profile_id = $1 "
        "AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) "
        "ORDER BY created_at DESC, id DESC LIMIT $4",
        profile_id,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )


async def claim_job(
    conn: asyncpg.Connection, *, backfill_id: UUID, lease_token: int, lease_s: float
) -> Record | None:
    """Takes the lease if ``lease_token`` is current (the token moves on); None otherwise."""
    return await conn.fetchrow(
        "UPDATE backfill_jobs SET status = 'running', lease_token = lease_token + 1, "
        "lease_until = now() + make_interval(secs => $3), started_at = coalesce(started_at, "
        "now()), updated_at = now() WHERE id = $1 AND lease_token = $2 "
        f"AND status IN ('queued', 'running') RETURNING {JOB_COLUMNS}",
        backfill_id,
        lease_token,
        float(lease_s),
    )


async def count_points(
    conn: asyncpg.Connection, *, sensor_id: UUID, range_from: datetime, range_to: datetime
) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM telemetry WHERE sensor_id = $1 AND ts >= $2 AND ts < $3",
            sensor_id,
            range_from,
            range_to,
        )
        or 0
    )


async def extend_profile_window(
    conn: asyncpg.Connection, *, profile_id: UUID, valid_from: datetime | None
) -> None:
    """Moves a profile's start back (the caller holds the sensor's profile lock)."""
    await conn.execute(
        "UPDATE conversion_profiles SET valid_from = $2 WHERE id = $1", profile_id, valid_from
    )


async def set_rows_total(conn: asyncpg.Connection, *, backfill_id: UUID, rows_total: int) -> None:
    await conn.execute(
        "UPDATE backfill_jobs SET rows_total = $2 WHERE id = $1", backfill_id, rows_total
    )


async def fetch_points(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    after: datetime | None,
    range_from: datetime,
    range_to: datetime,
    limit: int,
    sample: float = 1.0,
) -> list[Record]:
    """The next ``limit`` points after ``after`` (from ``range_from`` when None), by time;
    with ``sample`` < 1, a random share of them."""
    return await conn.fetch(
        "SELECT ts, raw_value, physical_value, conversion_status, profile_version, "
        "capture_session_id FROM telemetry WHERE sensor_id = $1 AND ts >= $2 "
        "AND ($3::timestamptz IS NULL OR ts > $3) AND ts < $4 "
        "AND ($6::float8 >= 1 OR random() < $6) ORDER BY ts LIMIT $5",
        sensor_id,
        range_from,
        after,
        range_to,
        limit,
        sample,
    )


async def update_points(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    ts: Sequence[datetime],
    physical: Sequence[float | None],
    statuses: Sequence[str],
    versions: Sequence[int | None],
) -> int:
    if not ts:
        return 0
    result = await conn.execute(
        "UPDATE telemetry t SET physical_value = s.pv, conversion_status = s.st, "
        "profile_version = s.ver FROM unnest($2::timestamptz[], $3::float8[], $4::text[], "
        "$5::int[]) AS s(ts, pv, st, ver) WHERE t.sensor_id = $1 AND t.ts = s.ts "
        "AND t.ts >= $6 AND t.ts <= $7",
        sensor_id,
        list(ts),
        list(physical),
        list(statuses),
        list(versions),
        min(ts),
        max(ts),
    )
    return int(result.split()[-1])


async def insert_chunk(
    conn: asyncpg.Connection,
    *,
    backfill_id: UUID,
    chunk_no: int,
    ts_from: datetime,
    ts_to: datetime,
    rows: int,
    changed: int,
    lease_token: int,
) -> None:
    await conn.execute(
        "INSERT INTO backfill_chunks (backfill_id, chunk_no, ts_from, ts_to, row_count, changed, "
        "lease_token) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        backfill_id,
        chunk_no,
        ts_from,
        ts_to,
        rows,
        changed,
        lease_token,
    )


async def advance_job(
    conn: asyncpg.Connection,
    *,
    backfill_id: UUID,
    cursor_ts: datetime,
    rows: int,
    changed: int,
    lease_s: float,
) -> None:
    await conn.execute(
        "UPDATE backfill_jobs SET cursor_ts = $2, chunks_done = chunks_done + 1, "
        "rows_done = rows_done + $3, rows_changed = rows_changed + $4, "
        "lease_until = now() + make_interval(secs => $5), updated_at = now() WHERE id = $1",
        backfill_id,
        cursor_ts,
        rows,
        changed,
        float(lease_s),
    )


async def end_job(
    conn: asyncpg.Connection, *, backfill_id: UUID, status: str, error: str | None = None
) -> Record:
    row = await conn.fetchrow(
        "UPDATE backfill_jobs SET status = $2, error = $3, finished_at = now(), "
        f"lease_until = NULL, updated_at = now() WHERE id = $1 RETURNING {JOB_COLUMNS}",
        backfill_id,
        status,
        error,
    )
    assert row is not None
    return row


async def lock_stalled_jobs(conn: asyncpg.Connection, *, stale_s: float) -> list[Record]:
    """Queued jobs nobody started and running ones whose lease ran out, locked; their attempts
    count up and the lease is pushed out while a new job is enqueued."""
    return await conn.fetch(
        "UPDATE backfill_jobs SET attempts = attempts + 1, "
        "lease_until = now() + make_interval(secs => $1) WHERE id IN (SELECT id FROM "
        "backfill_jobs WHERE (status = 'queued' AND created_at < now() - make_interval(secs => "
        "$1) AND (lease_until IS NULL OR lease_until < now())) OR (status = 'running' AND "
        "lease_until < now()) FOR UPDATE SKIP LOCKED) "
        f"RETURNING {JOB_COLUMNS}",
        float(stale_s),
    )


async def open_jobs_with_session(
    conn: asyncpg.Connection, *, capture_session_id: UUID, except_id: UUID
) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM backfill_jobs WHERE status IN ('queued', 'running') "
            "AND $1 = ANY(session_ids) AND id <> $2",
            capture_session_id,
            except_id,
        )
        or 0
    )


async def list_sessions_in_range(
    conn: asyncpg.Connection, *, sensor_id: UUID, range_from: datetime, range_to: datetime
) -> list[Record]:
    """Capture sessions holding points of the sensor in the range (from the session rollups)."""
    return await conn.fetch(
        "SELECT c.id, c.status, c.previous_status FROM capture_sessions c WHERE c.id IN ("
        "SELECT DISTINCT capture_session_id FROM telemetry_session_1m WHERE sensor_id = $1 "
        "AND bucket >= date_trunc('minute', $2::timestamptz) AND bucket < $3) ORDER BY c.id",
        sensor_id,
        range_from,
        range_to,
    )


# Rollup refresh ---------------------------------------------------------------------------

_SENSOR_AGG = """
SELECT date_trunc('minute', ts) AS bucket, count(*) AS n, count(physical_value) AS pc,
       sum(physical_value) AS ps, min(physical_value) AS pmin, max(physical_value) AS pmax,
       (array_agg(physical_value ORDER BY ts))[1] AS pfirst,
       (array_agg(physical_value ORDER BY ts DESC))[1] AS plast,
       sum(raw_value) AS rs, min(raw_value) AS rmin, max(raw_value) AS rmax,
       (array_agg(raw_value ORDER BY ts))[1] AS rfirst,
       (array_agg(raw_value ORDER BY ts DESC))[1] AS rlast, min(ts) AS t0, max(ts) AS t1
FROM telemetry WHERE sensor_id = $1 AND ts >= $2 AND ts < $3
     AND date_trunc('minute', ts) = ANY($4::timestamptz[])
GROUP BY 1
"""
_REFRESH_SENSOR = f"""
WITH agg AS ({_SENSOR_AGG}), missing AS (
    INSERT INTO telemetry_1m (sensor_id, bucket, count, raw_sum, raw_min, raw_max, raw_first,
        raw_last, phys_count, phys_sum, phys_min, phys_max, phys_first, phys_last, first_ts,
        last_ts)
    SELECT $1, bucket, n, rs, rmin, rmax, rfirst, rlast, pc, ps, pmin, pmax, pfirst, plast, t0, t1
    FROM agg WHERE NOT EXISTS (SELECT 1 FROM telemetry_1m t WHERE t.sensor_id = $1
                               AND t.bucket = agg.bucket)
    ON CONFLICT (sensor_id, bucket) DO NOTHING RETURNING bucket
), updated AS (
    UPDATE telemetry_1m t SET phys_count = a.pc, phys_sum = a.ps, phys_min = a.pmin,
        phys_max = a.pmax, phys_first = a.pfirst, phys_last = a.plast
    FROM agg a WHERE t.sensor_id = $1 AND t.bucket = a.bucket AND t.count = a.n
    RETURNING t.bucket
)
SELECT bucket FROM missing UNION SELECT bucket FROM updated
"""
_REFRESH_SESSIONS = """
WITH agg AS (
    SELECT capture_session_id AS sid, date_trunc('minute', ts) AS bucket, count(*) AS n,
           count(physical_value) AS pc, sum(physical_value) AS ps, min(physical_value) AS pmin,
           max(physical_value) AS pmax
    FROM telemetry WHERE sensor_id = $1 AND ts >= $2 AND ts < $3
         AND capture_session_id IS NOT NULL
         AND date_trunc('minute', ts) = ANY($4::timestamptz[])
    GROUP BY 1, 2
)
UPDATE telemetry_session_1m t SET phys_count = a.pc, phys_sum = a.ps, phys_min = a.pmin,
    phys_max = a.pmax
FROM agg a WHERE t.capture_session_id = a.sid AND t.sensor_id = $1 AND t.bucket = a.bucket
     AND t.count = a.n
RETURNING t.bucket, t.capture_session_id
"""
_SESSION_BUCKETS = """
SELECT DISTINCT capture_session_id AS sid, date_trunc('minute', ts) AS bucket FROM telemetry
WHERE sensor_id = $1 AND ts >= $2 AND ts < $3 AND capture_session_id IS NOT NULL
      AND date_trunc('minute', ts) = ANY($4::timestamptz[])
"""


async def refresh_rollups(
    conn: asyncpg.Connection, *, sensor_id: UUID, buckets: Sequence[datetime]
) -> list[datetime]:
    """Re-aggregates the physical columns of the sensor's rollups for ``buckets`` (minutes) from
    ``telemetry``; returns the minutes still out of step after a few rounds (busy with writes)."""
    pending = sorted(set(buckets))
    span = (min(pending), max(pending)) if pending else None
    if span is None:
        return []
    sessions_pending = {
        (r["sid"], r["bucket"])
        for r in await conn.fetch(_SESSION_BUCKETS, sensor_id, span[0], _end(span[1]), pending)
    }
    for _ in range(REFRESH_ROUNDS):
        if not pending and not sessions_pending:
            return []
        if pending:
            args: list[Any] = [sensor_id, pending[0], _end(pending[-1]), pending]
            done = {r["bucket"] for r in await conn.fetch(_REFRESH_SENSOR, *args)}
            pending = [b for b in pending if b not in done]
        if sessions_pending:
            minutes = sorted({b for _, b in sessions_pending})
            rows = await conn.fetch(
                _REFRESH_SESSIONS, sensor_id, minutes[0], _end(minutes[-1]), minutes
            )
            sessions_pending -= {(r["capture_session_id"], r["bucket"]) for r in rows}
    return sorted(set(pending) | {b for _, b in sessions_pending})


def _end(bucket: datetime) -> datetime:
    return bucket + timedelta(minutes=1)


# Retention --------------------------------------------------------------------------------


async def list_retention_ranges(
    conn: asyncpg.Connection, *, cutoff: datetime
) -> list[tuple[datetime, datetime, str | None]]:
    """(start, end, chunk table) ranges wholly older than ``cutoff``: TimescaleDB chunks when
    the extension is there, else whole days; the chunk table is None for plain days."""
    if await conn.fetchval("SELECT to_regclass('timescaledb_information.chunks') IS NOT NULL"):
        rows = await conn.fetch(
            "SELECT range_start, range_end, format('%I.%I', chunk_schema, chunk_name) AS chunk "
            "FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' "
            "AND range_end <= $1 ORDER BY range_start",
            cutoff,
        )
        return [(r["range_start"], r["range_end"], r["chunk"]) for r in rows]
    rows = await conn.fetch(
        "SELECT d AS start, d + interval '1 day' AS end FROM generate_series("
        "date_trunc('day', (SELECT min(ts) FROM telemetry)), $1::timestamptz - interval '1 day', "
        "interval '1 day') AS d",
        cutoff,
    )
    return [(r["start"], r["end"], None) for r in rows]


async def delete_untagged_points(
    conn: asyncpg.Connection, *, start: datetime, end: datetime, chunk: str | None
) -> int:
    """Deletes points outside capture sessions in [start, end) and rebuilds that range's sensor
    rollups from what is left. A chunk holding no session points is dropped whole."""
    tagged = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM telemetry WHERE ts >= $1 AND ts < $2 "
        "AND capture_session_id IS NOT NULL)",
        start,
        end,
    )
    if chunk is not None and not tagged:
        count = int(
            await conn.fetchval(
                "SELECT count(*) FROM telemetry WHERE ts >= $1 AND ts < $2", start, end
            )
            or 0
        )
        await conn.execute(f"DROP TABLE {chunk}")
    else:
        result = await conn.execute(
            "DELETE FROM telemetry WHERE ts >= $1 AND ts < $2 AND capture_session_id IS NULL",
            start,
            end,
        )
        count = int(result.split()[-1])
    if count:
        await conn.execute(
            "DELETE FROM telemetry_1m WHERE bucket >= $1 AND bucket < $2", start, end
        )
        await conn.execute(
            "INSERT INTO telemetry_1m (sensor_id, bucket, count, raw_sum, raw_min, raw_max, "
            "raw_first, raw_last, phys_count, phys_sum, phys_min, phys_max, phys_first, "
            "phys_last, first_ts, last_ts) SELECT sensor_id, date_trunc('minute', ts), count(*), "
            "sum(raw_value), min(raw_value), max(raw_value), "
            "(array_agg(raw_value ORDER BY ts))[1], (array_agg(raw_value ORDER BY ts DESC))[1], "
            "count(physical_value), sum(physical_value), min(physical_value), "
            "max(physical_value), (array_agg(physical_value ORDER BY ts))[1], "
            "(array_agg(physical_value ORDER BY ts DESC))[1], min(ts), max(ts) "
            "FROM telemetry WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2",
            start,
            end,
        )
    return count
