"""Sensors, their tokens and the projects they are shared with."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.sensor_status import StatusThresholds, status_sql, status_sql_args

SENSOR_COLUMNS = (
    "s.id, s.project_id, s.name, s.type, s.input_unit, s.display_unit, s.expected_rate_hz, "
    "s.description, s.token_preview, s.rate_points_per_s, s.burst_points, s.last_seen_at, "
    "s.reported_status, s.created_by, s.created_at, s.updated_at, "
    "CASE WHEN s.previous_token_expires_at > now() THEN s.previous_token_expires_at END "
    "AS previous_token_expires_at, "
    "ARRAY(SELECT sp.project_id FROM sensor_projects sp WHERE sp.sensor_id = s.id "
    "ORDER BY sp.created_at, sp.project_id) AS shared_project_ids"
)
UPDATABLE = frozenset(
    {
        "name",
        "type",
        "input_unit",
        "display_unit",
        "expected_rate_hz",
        "description",
        "rate_points_per_s",
        "burst_points",
    }
)


def minute_window(now: datetime) -> tuple[datetime, float]:
    """(start of the current minute, weight of the previous minute's count).

    ``points_last_minute`` is a sliding-window estimate from the per-minute rollup: the current
    (partial) minute's count plus the previous minute's count weighted by the part of it that
    still lies within the last 60 s. Two primary-key rows per sensor, never a raw-point scan.
    """
    start = now.replace(second=0, microsecond=0)
    elapsed_s = (now - start).total_seconds()
    return start, max(0.0, 1.0 - elapsed_s / 60.0)


def _points_last_minute(minute_param: int) -> str:
    minute, weight = f"${minute_param}", f"${minute_param + 1}"
    return (
        "LEFT JOIN LATERAL (SELECT coalesce(sum(CASE WHEN r.bucket = "
        f"{minute}::timestamptz THEN r.count::float8 ELSE r.count * {weight}::float8 END), 0) "
        "AS points_last_minute FROM telemetry_1m r WHERE r.sensor_id = s.id "
        f"AND r.bucket IN ({minute}::timestamptz, {minute}::timestamptz - interval '1 minute')) "
        "pm ON true"
    )


async def insert_sensor(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    values: dict[str, Any],
    token_hash: bytes,
    token_preview: str,
    created_by: UUID | None,
) -> Record:
    assert set(values) <= UPDATABLE
    columns = ["project_id", "token_hash", "token_preview", "created_by", *values]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO sensors AS s ({', '.join(columns)}) VALUES ({placeholders}) "
        f"RETURNING {SENSOR_COLUMNS}",
        project_id,
        token_hash,
        token_preview,
        created_by,
        *values.values(),
    )
    assert row is not None
    return row


async def fetch_sensor(
    conn: asyncpg.Connection, *, sensor_id: UUID, now: datetime
) -> Record | None:
    """The sensor with ``points_last_minute`` at ``now`` (see ``minute_window``)."""
    minute, weight = minute_window(now)
    return await conn.fetchrow(
        f"SELECT {SENSOR_COLUMNS}, pm.points_last_minute FROM sensors s {_points_last_minute(2)} "
        "WHERE s.id = $1",
        sensor_id,
        minute,
        weight,
    )


async def lock_sensor(conn: asyncpg.Connection, *, sensor_id: UUID) -> Record | None:
    """The sensor row, locked until the transaction ends (serialises profile/token changes)."""
    return await conn.fetchrow(
        f"SELECT {SENSOR_COLUMNS} FROM sensors s WHERE s.id = $1 FOR UPDATE OF s", sensor_id
    )


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_sensors_in_project(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    limit: int,
    after: tuple[datetime, UUID] | None,
    sensor_type: str | None,
    status: str | None,
    query: str | None,
    now: datetime,
    thresholds: StatusThresholds,
) -> list[Record]:
    """The project's own sensors and those shared into it, newest first."""
    minute, weight = minute_window(now)
    return await conn.fetch(
        f"SELECT {SENSOR_COLUMNS}, pm.points_last_minute FROM sensors s {_points_last_minute(7)} "
        "WHERE (s.project_id = $1 OR s.id IN "
        "      (SELECT sensor_id FROM sensor_projects WHERE project_id = $1)) "
        "AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2, $3::uuid)) "
        "AND ($4::text IS NULL OR s.type = $4) "
        "AND ($5::text IS NULL OR s.name ILIKE $5 OR s.description ILIKE $5 OR s.type ILIKE $5) "
        f"AND ($9::text IS NULL OR {status_sql('s', 10)} = $9) "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT $6",
        project_id,
        after[0] if after else None,
        after[1] if after else None,
        sensor_type,
        _like_pattern(query) if query else None,
        limit,
        minute,
        weight,
        status,
        *status_sql_args(now, thresholds),
    )


async def update_sensor(
    conn: asyncpg.Connection, *, sensor_id: UUID, changes: dict[str, Any]
) -> Record | None:
    assert set(changes) <= UPDATABLE
    if not changes:
        return await conn.fetchrow(
            f"SELECT {SENSOR_COLUMNS} FROM sensors s WHERE s.id = $1", sensor_id
        )
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    return await conn.fetchrow(
        f"UPDATE sensors AS s SET {assignments}, updated_at = now() WHERE s.id = $1 "
        f"RETURNING {SENSOR_COLUMNS}",
        sensor_id,
        *changes.values(),
    )


async def replace_token(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    token_hash: bytes,
    token_preview: str,
    grace_period_s: int,
) -> Record | None:
    """Installs a new token; the current one stays valid ``grace_period_s`` longer (0: never)."""
    return await conn.fetchrow(
        "UPDATE sensors AS s SET "
        "previous_token_hash = CASE WHEN $4::int > 0 THEN s.token_hash END, "
        "previous_token_expires_at = CASE WHEN $4::int > 0 "
        "THEN now() + make_interval(secs => $4::int) END, "
        f"token_hash = $2, token_preview = $3, updated_at = now() WHERE s.id = $1 "
        f"RETURNING {SENSOR_COLUMNS}",
        sensor_id,
        token_hash,
        token_preview,
        grace_period_s,
    )


async def delete_sensor(conn: asyncpg.Connection, *, sensor_id: UUID) -> bool:
    return await conn.execute("DELETE FROM sensors WHERE id = $1", sensor_id) != "DELETE 0"


async def fetch_sensor_by_token_hash(
    conn: asyncpg.Connection, *, token_hash: bytes
) -> Record | None:
    """The sensor whose current token, or previous token still in its grace period, matches.

    ``valid_for_s`` is NULL for the current token and the seconds left for a previous one.
    """
    return await conn.fetchrow(
        "SELECT id, project_id, name, expected_rate_hz, rate_points_per_s, burst_points, "
        "token_hash, previous_token_hash, "
        "CASE WHEN token_hash = $1 THEN NULL "
        "ELSE extract(epoch FROM previous_token_expires_at - now())::float8 END AS valid_for_s "
        "FROM sensors WHERE token_hash = $1 "
        "OR (previous_token_hash = $1 AND previous_token_expires_at > now()) LIMIT 1",
        token_hash,
    )


async def list_running_sessions_using(
    conn: asyncpg.Connection, *, sensor_id: UUID, project_ids: list[UUID] | None = None
) -> list[Record]:
    """Running capture sessions whose run has this sensor attached (optionally per project)."""
    return await conn.fetch(
        "SELECT cs.id, cs.run_id, cs.project_id FROM capture_sessions cs "
        "JOIN run_sensors rs ON rs.run_id = cs.run_id "
        "WHERE rs.sensor_id = $1 AND cs.status = 'running' "
        "AND ($2::uuid[] IS NULL OR cs.project_id = ANY($2::uuid[])) ORDER BY cs.id",
        sensor_id,
        project_ids,
    )


# Sharing ------------------------------------------------------------------------------------


async def list_member_projects(
    conn: asyncpg.Connection, *, user_id: UUID, project_ids: list[UUID]
) -> set[UUID]:
    """Which of ``project_ids`` the user is a member of."""
    rows = await conn.fetch(
        "SELECT project_id FROM project_members WHERE user_id = $1 AND project_id = ANY($2)",
        user_id,
        project_ids,
    )
    return {UUID(str(row["project_id"])) for row in rows}


async def add_shared_projects(
    conn: asyncpg.Connection, *, sensor_id: UUID, project_ids: list[UUID]
) -> None:
    await conn.execute(
        "INSERT INTO sensor_projects (sensor_id, project_id) "
        "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        sensor_id,
        project_ids,
    )


async def remove_shared_projects(
    conn: asyncpg.Connection, *, sensor_id: UUID, project_ids: list[UUID]
) -> None:
    await conn.execute(
        "DELETE FROM sensor_projects WHERE sensor_id = $1 AND project_id = ANY($2::uuid[])",
        sensor_id,
        project_ids,
    )
