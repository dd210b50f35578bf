"""Telemetry read queries: live stamping and tails, history pages, aggregates, export counts.

Positions: a stored point's place in its sensor's commit order is ``(received_at, ts)``.
A sensor's writer commits requests in arrival order and stamps every point of a request with
the request's ``received_at``, so each commit only adds positions above every earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

_US = "'epoch'::timestamptz + {} * interval '1 microsecond'"
_R_US = "(extract(epoch FROM received_at) * 1000000)::bigint"
_TS_US = "(extract(epoch FROM ts) * 1000000)::bigint"
_POINT = (
    f"sensor_id, {_R_US} AS r_us, {_TS_US} AS ts_us, raw_value, physical_value, "
    "profile_version, conversion_status, run_id"
)


async def has_timescaledb(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
    )


# Live -----------------------------------------------------------------------------------------


async def stamp_points(
    conn: asyncpg.Connection, *, sensor_ids: Sequence[UUID], ts_us: Sequence[int]
) -> list[Record]:
    """The stored rows of (sensor, ts) pairs, with their positions, in input order."""
    return await conn.fetch(
        f"""
        SELECT f.ord, {_POINT.replace("sensor_id,", "t.sensor_id,", 1)}
        FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS f(sensor_id, ts_us, ord)
        JOIN telemetry t ON t.sensor_id = f.sensor_id AND t.ts = {_US.format("f.ts_us")}
        WHERE t.ts >= {_US.format("$3::bigint")} AND t.ts <= {_US.format("$4::bigint")}
        ORDER BY f.ord
        """,
        list(sensor_ids),
        list(ts_us),
        min(ts_us),
        max(ts_us),
    )


async def fetch_tail(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    after_r_us: int,
    after_ts_us: int,
    run_id: UUID | None,
    capture_session_id: UUID | None,
    limit: int,
) -> list[Record]:
    """A sensor's points committed after a position, in commit order (gap-fill)."""
    return await conn.fetch(
        f"""
        SELECT {_POINT} FROM telemetry
        WHERE sensor_id = $1
          AND (received_at > {_US.format("$2::bigint")}
               OR (received_at = {_US.format("$2::bigint")} AND ts > {_US.format("$3::bigint")}))
          AND ($4::uuid IS NULL OR run_id = $4)
          AND ($5::uuid IS NULL OR capture_session_id = $5)
        ORDER BY received_at, ts LIMIT $6
        """,
        sensor_id,
        after_r_us,
        after_ts_us,
        run_id,
        capture_session_id,
        limit,
    )


# History --------------------------------------------------------------------------------------


async def fetch_history_page(
    conn: asyncpg.Connection,
    *,
    sensor_ids: Sequence[UUID],
    run_id: UUID | None,
    capture_session_id: UUID | None,
    start: datetime,
    end: datetime,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Record]:
    """Up to ``limit`` points ordered by (ts, sensor_id), strictly after ``after``.

    One index range scan per sensor (a lateral join), merged: a page costs
    ``limit`` rows per sensor at most, whatever the range.
    """
    after_ts, after_sensor = after if after else (start - timedelta(microseconds=1), None)
    return await conn.fetch(
        """
        SELECT t.* FROM unnest($1::uuid[]) AS s(id) CROSS JOIN LATERAL (
            SELECT sensor_id, ts, raw_value, physical_value, profile_version,
                   conversion_status, run_id, capture_session_id
            FROM telemetry
            WHERE sensor_id = s.id AND ts >= $4 AND ts < $5
              AND (ts > $6 OR (ts = $6 AND $7::uuid IS NOT NULL AND s.id > $7))
              AND ($2::uuid IS NULL OR run_id = $2)
              AND ($3::uuid IS NULL OR capture_session_id = $3)
            ORDER BY ts LIMIT $8
        ) AS t
        ORDER BY t.ts, t.sensor_id LIMIT $8
        """,
        list(sensor_ids),
        run_id,
        capture_session_id,
        start,
        end,
        after_ts,
        after_sensor,
        limit,
    )


# Aggregates -----------------------------------------------------------------------------------


def _bucket(timescale: bool, column: str, width: str, origin: str) -> str:
    function = "time_bucket" if timescale else "date_bin"
    return f"{function}({width}::interval, {column}, {origin}::timestamptz)"


def _first_last(timescale: bool, value: str) -> str:
    if timescale:
        return f"first({value}, ts) AS first, last({value}, ts) AS last"
    return (
        f"(array_agg({value} ORDER BY ts))[1] AS first, "
        f"(array_agg({value} ORDER BY ts DESC))[1] AS last"
    )


def _first_last_of_minutes(timescale: bool, p: str) -> str:
    if timescale:  # first()/last() keep one row per group, array_agg sorts them all
        return f"first({p}_first, first_ts) AS first, last({p}_last, last_ts) AS last"
    return (
        f"(array_agg({p}_first ORDER BY first_ts))[1] AS first, "
        f"(array_agg({p}_last ORDER BY last_ts DESC))[1] AS last"
    )


async def aggregate_raw(
    conn: asyncpg.Connection,
    *,
    timescale: bool,
    physical: bool,
    sensor_ids: Sequence[UUID],
    run_id: UUID | None,
    capture_session_id: UUID | None,
    width: timedelta,
    origin: datetime,
    start: datetime,
    end: datetime,
) -> list[Record]:
    """Buckets computed from the raw points (sub-minute widths)."""
    value = "physical_value" if physical else "raw_value"
    return await conn.fetch(
        f"""
        SELECT sensor_id, {_bucket(timescale, "ts", "$3", "$4")} AS bucket,
               count({value}) AS count,
               min({value}) AS min, max({value}) AS max, avg({value}) AS avg,
               {_first_last(timescale, value)}
        FROM telemetry
        WHERE sensor_id = ANY($1::uuid[]) AND ts >= $5 AND ts < $6
          AND ($2::uuid IS NULL OR run_id = $2)
          AND ($7::uuid IS NULL OR capture_session_id = $7)
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        list(sensor_ids),
        run_id,
        width,
        origin,
        start,
        end,
        capture_session_id,
    )


async def aggregate_rollup(
    conn: asyncpg.Connection,
    *,
    timescale: bool,
    physical: bool,
    sensor_ids: Sequence[UUID],
    width: timedelta,
    origin: datetime,
    start: datetime,
    end: datetime,
) -> list[Record]:
    """Buckets re-aggregated from the per-minute rollup (widths in whole minutes)."""
    p = "phys" if physical else "raw"
    count = "phys_count" if physical else "count"
    return await conn.fetch(
        f"""
        SELECT sensor_id, {_bucket(timescale, "bucket", "$2", "$3")} AS bucket,
               sum({count})::bigint AS count, min({p}_min) AS min, max({p}_max) AS max,
               sum({p}_sum) / nullif(sum({count}), 0) AS avg,
               {_first_last_of_minutes(timescale, p)}
        FROM telemetry_1m
        WHERE sensor_id = ANY($1::uuid[]) AND bucket >= $4 AND bucket < $5
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        list(sensor_ids),
        width,
        origin,
        start,
        end,
    )


async def aggregate_session_rollup(
    conn: asyncpg.Connection,
    *,
    timescale: bool,
    physical: bool,
    sensor_ids: Sequence[UUID],
    session_ids: Sequence[UUID],
    width: timedelta,
    origin: datetime,
    start: datetime,
    end: datetime,
) -> list[Record]:
    """Buckets from the per-session minute rollup; first/last read by primary key."""
    p = "phys" if physical else "raw"
    count = "phys_count" if physical else "count"
    value = "physical_value" if physical else "raw_value"
    return await conn.fetch(
        f"""
        WITH b AS (
            SELECT sensor_id, {_bucket(timescale, "bucket", "$3", "$4")} AS bucket,
                   sum({count})::bigint AS count, min({p}_min) AS min, max({p}_max) AS max,
                   sum({p}_sum) / nullif(sum({count}), 0) AS avg,
                   min(first_ts) AS first_ts, max(last_ts) AS last_ts
            FROM telemetry_session_1m
            WHERE capture_session_id = ANY($2::uuid[]) AND sensor_id = ANY($1::uuid[])
              AND bucket >= $5 AND bucket < $6
            GROUP BY 1, 2
        )
        SELECT b.sensor_id, b.bucket, b.count, b.min, b.max, b.avg,
               f.{value} AS first, l.{value} AS last
        FROM b
        JOIN telemetry f ON f.sensor_id = b.sensor_id AND f.ts = b.first_ts
        JOIN telemetry l ON l.sensor_id = b.sensor_id AND l.ts = b.last_ts
        ORDER BY 1, 2
        """,
        list(sensor_ids),
        list(session_ids),
        width,
        origin,
        start,
        end,
    )


# Export ---------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "sensor_id",
    "ts",
    "raw_value",
    "physical_value",
    "profile_version",
    "conversion_status",
    "run_id",
    "capture_session_id",
)

EXPORT_QUERY = f"""
SELECT t.{", t.".join(EXPORT_COLUMNS)}
FROM unnest($1::uuid[]) AS s(id) CROSS JOIN LATERAL (
    SELECT * FROM telemetry
    WHERE sensor_id = s.id AND ts >= $4 AND ts < $5
      AND ($2::uuid IS NULL OR run_id = $2) AND ($3::uuid IS NULL OR capture_session_id = $3)
    ORDER BY ts
) AS t
"""


async def count_points(
    conn: asyncpg.Connection,
    *,
    sensor_ids: Sequence[UUID],
    run_id: UUID | None,
    capture_session_id: UUID | None,
    start: datetime,
    end: datetime,
) -> int:
    """Exact count: whole minutes from the rollups, the partial edge minutes from raw points."""
    inner_start = _ceil_minute(start)
    inner_end = max(inner_start, end.replace(second=0, microsecond=0))
    if run_id is None and capture_session_id is None:
        whole = await conn.fetchval(
            "SELECT coalesce(sum(count), 0) FROM telemetry_1m WHERE sensor_id = ANY($1::uuid[]) "
            "AND bucket >= $2 AND bucket < $3",
            list(sensor_ids),
            inner_start,
            inner_end,
        )
    else:
        whole = await conn.fetchval(
            "SELECT coalesce(sum(r.count), 0) FROM telemetry_session_1m r "
            "JOIN capture_sessions c ON c.id = r.capture_session_id "
            "WHERE r.sensor_id = ANY($1::uuid[]) AND r.bucket >= $2 AND r.bucket < $3 "
            "AND ($4::uuid IS NULL OR c.run_id = $4) AND ($5::uuid IS NULL OR c.id = $5)",
            list(sensor_ids),
            inner_start,
            inner_end,
            run_id,
            capture_session_id,
        )
    edges = await conn.fetchval(
        "SELECT count(*) FROM telemetry WHERE sensor_id = ANY($1::uuid[]) "
        "AND ((ts >= $2 AND ts < $3) OR (ts >= $4 AND ts < $5)) "
        "AND ($6::uuid IS NULL OR run_id = $6) AND ($7::uuid IS NULL OR capture_session_id = $7)",
        list(sensor_ids),
        start,
        min(inner_start, end),
        inner_end,
        end,
        run_id,
        capture_session_id,
    )
    return int(whole) + int(edges)


def _ceil_minute(value: datetime) -> datetime:
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)


async def fetch_profiles(
    conn: asyncpg.Connection, *, sensor_ids: Sequence[UUID], start: datetime, end: datetime
) -> list[Record]:
    """Conversion profiles (not drafts) whose validity overlaps the range."""
    return await conn.fetch(
        "SELECT sensor_id, version, kind, payload, status, valid_from, valid_to "
        "FROM conversion_profiles WHERE sensor_id = ANY($1::uuid[]) AND status <> 'draft' "
        "AND (valid_from IS NULL OR valid_from < $3) AND (valid_to IS NULL OR valid_to > $2) "
        "ORDER BY sensor_id, version",
        list(sensor_ids),
        start,
        end,
    )


async def insert_export(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    requested_by: UUID,
    export_format: str,
    params: dict[str, Any],
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO exports (project_id, requested_by, kind, format, params) "
        "VALUES ($1, $2, 'telemetry', $3, $4) RETURNING id, project_id, kind, format, status, "
        "params, created_at",
        project_id,
        requested_by,
        export_format,
        params,
    )
    assert row is not None
    return row
