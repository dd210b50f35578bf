"""Conversion profiles: versions per sensor, their status and validity windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

PROFILE_COLUMNS = (
    "p.id, p.sensor_id, p.version, p.kind, p.payload, p.status, p.valid_from, p.valid_to, "
    "p.description, p.created_by, p.created_at, p.activated_at"
)


async def lock_sensor_of_profiles(conn: asyncpg.Connection, *, sensor_id: UUID) -> UUID | None:
    """Locks the sensor row (every profile change of a sensor runs under it); its project."""
    return await conn.fetchval("SELECT project_id FROM sensors WHERE id = $1 FOR UPDATE", sensor_id)


async def clock_now(conn: asyncpg.Connection) -> datetime:
    """The database's wall clock now (not the transaction start: taken after waiting for locks,
    so serialised changes get increasing times)."""
    value = await conn.fetchval("SELECT clock_timestamp()")
    assert value is not None
    return value


async def insert_profile(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    kind: str,
    payload: dict[str, Any],
    description: str,
    created_by: UUID | None,
) -> Record:
    """A new draft with the sensor's next version (the caller holds the sensor lock)."""
    row = await conn.fetchrow(
        "INSERT INTO conversion_profiles AS p "
        "(sensor_id, version, kind, payload, description, created_by) "
        "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 "
        "FROM conversion_profiles WHERE sensor_id = $1 "
        f"RETURNING {PROFILE_COLUMNS}",
        sensor_id,
        kind,
        payload,
        description,
        created_by,
    )
    assert row is not None
    return row


async def fetch_profile(
    conn: asyncpg.Connection, *, profile_id: UUID, lock: bool = False
) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM conversion_profiles p WHERE p.id = $1"
        + (" FOR UPDATE" if lock else ""),
        profile_id,
    )


async def fetch_active_profile(
    conn: asyncpg.Connection, *, sensor_id: UUID, lock: bool = False
) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM conversion_profiles p "
        "WHERE p.sensor_id = $1 AND p.status = 'active'" + (" FOR UPDATE" if lock else ""),
        sensor_id,
    )


async def list_profiles(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    limit: int,
    before_version: int | None,
    status: str | None,
) -> list[Record]:
    """Newest version first."""
    return await conn.fetch(
        f"SELECT {PROFILE_COLUMNS} FROM conversion_profiles p WHERE p.sensor_id = $1 "
        "AND ($2::int IS NULL OR p.version < $2) AND ($3::text IS NULL OR p.status = $3) "
        "ORDER BY p.version DESC LIMIT $4",
        sensor_id,
        before_version,
        status,
        limit,
    )


async def list_applying_profiles(conn: asyncpg.Connection, *, sensor_id: UUID) -> list[Record]:
    """Every profile that applies somewhere in time: not drafts, not empty windows."""
    return await conn.fetch(
        f"SELECT {PROFILE_COLUMNS} FROM conversion_profiles p WHERE p.sensor_id = $1 "
        "AND p.status <> 'draft' "
        "AND (p.valid_from IS NULL OR p.valid_to IS NULL OR p.valid_to > p.valid_from) "
        "ORDER BY p.version",
        sensor_id,
    )


async def list_sensors_with_due_profiles(conn: asyncpg.Connection, *, now: datetime) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT sensor_id FROM conversion_profiles "
        "WHERE status = 'scheduled' AND valid_from <= $1",
        now,
    )
    return [row["sensor_id"] for row in rows]


async def lock_due_profiles(
    conn: asyncpg.Connection, *, sensor_id: UUID, now: datetime
) -> list[Record]:
    """The sensor's scheduled profiles due at ``now``, in switching order, locked."""
    return await conn.fetch(
        f"SELECT {PROFILE_COLUMNS} FROM conversion_profiles p WHERE p.sensor_id = $1 "
        "AND p.status = 'scheduled' AND p.valid_from <= $2 "
        "ORDER BY p.valid_from, p.version FOR UPDATE",
        sensor_id,
        now,
    )


async def mark_active(
    conn: asyncpg.Connection, *, profile_id: UUID, valid_from: datetime, now: datetime
) -> Record:
    row = await conn.fetchrow(
        "UPDATE conversion_profiles AS p SET status = 'active', valid_from = $2, "
        f"valid_to = NULL, activated_at = $3 WHERE p.id = $1 RETURNING {PROFILE_COLUMNS}",
        profile_id,
        valid_from,
        now,
    )
    assert row is not None
    return row


async def mark_scheduled(
    conn: asyncpg.Connection, *, profile_id: UUID, valid_from: datetime
) -> Record:
    row = await conn.fetchrow(
        "UPDATE conversion_profiles AS p SET status = 'scheduled', valid_from = $2, "
        f"valid_to = NULL WHERE p.id = $1 RETURNING {PROFILE_COLUMNS}",
        profile_id,
        valid_from,
    )
    assert row is not None
    return row


async def mark_deprecated(
    conn: asyncpg.Connection, *, profile_id: UUID, valid_to: datetime
) -> Record:
    """Deprecated from ``valid_to`` on (never before the window's start)."""
    row = await conn.fetchrow(
        "UPDATE conversion_profiles AS p SET status = 'deprecated', "
        "valid_to = greatest($2::timestamptz, p.valid_from) "
        f"WHERE p.id = $1 RETURNING {PROFILE_COLUMNS}",
        profile_id,
        valid_to,
    )
    assert row is not None
    return row
