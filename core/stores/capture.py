"""Capture sessions: the time windows of a run in which its sensors' data is tagged."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

CAPTURE_COLUMNS = (
    "c.id, c.run_id, c.project_id, c.ordinal, c.status, c.previous_status, c.started_at, "
    "c.stopped_at, c.notes, c.summary, c.failure_reason, c.created_by, c.created_at, "
    "c.updated_at, EXTRACT(EPOCH FROM (COALESCE(c.stopped_at, CASE WHEN c.status = 'running' "
    "THEN now() END) - c.started_at))::double precision AS duration_seconds"
)


async def insert_running_session(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    project_id: UUID,
    notes: str,
    created_by: UUID | None,
) -> Record:
    """The run's next session (ordinal = highest + 1), running from now.

    Callers hold the run's row lock, so the ordinal is not raced; the partial unique index
    ``capture_sessions_one_running`` still refuses a second running session whatever happens.
    """
    row = await conn.fetchrow(
        "INSERT INTO capture_sessions AS c (run_id, project_id, ordinal, status, started_at, "
        "notes, created_by) SELECT $1::uuid, $2::uuid, COALESCE(max(ordinal), 0) + 1, 'running', "
        f"now(), $3::text, $4::uuid FROM capture_sessions WHERE run_id = $1 "
        f"RETURNING {CAPTURE_COLUMNS}",
        run_id,
        project_id,
        notes,
        created_by,
    )
    assert row is not None
    return row


async def fetch_session(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {CAPTURE_COLUMNS} FROM capture_sessions c WHERE c.id = $1", capture_session_id
    )


async def lock_session(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {CAPTURE_COLUMNS} FROM capture_sessions c WHERE c.id = $1 FOR UPDATE",
        capture_session_id,
    )


async def fetch_running_session(conn: asyncpg.Connection, *, run_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {CAPTURE_COLUMNS} FROM capture_sessions c "
        "WHERE c.run_id = $1 AND c.status = 'running'",
        run_id,
    )


async def list_sessions(
    conn: asyncpg.Connection, *, run_id: UUID, after_ordinal: int | None, limit: int
) -> list[Record]:
    """The run's sessions in ordinal order."""
    return await conn.fetch(
        f"SELECT {CAPTURE_COLUMNS} FROM capture_sessions c WHERE c.run_id = $1 "
        "AND ($2::integer IS NULL OR c.ordinal > $2) ORDER BY c.ordinal LIMIT $3",
        run_id,
        after_ordinal,
        limit,
    )


async def set_session_status(
    conn: asyncpg.Connection,
    *,
    capture_session_id: UUID,
    status: str,
    previous_status: str | None,
    stopped_at: datetime | None = None,
    summary: Any = None,
    failure_reason: str | None = None,
) -> Record:
    """Moves a session to ``status``; leaving ``running`` stamps ``stopped_at``."""
    row = await conn.fetchrow(
        "UPDATE capture_sessions AS c SET status = $2, previous_status = $3, "
        "updated_at = now(), "
        "stopped_at = CASE WHEN c.status = 'running' THEN COALESCE($4, now()) "
        "ELSE c.stopped_at END, "
        "summary = COALESCE($5, c.summary), "
        "failure_reason = COALESCE($6, c.failure_reason) "
        f"WHERE c.id = $1 RETURNING {CAPTURE_COLUMNS}",
        capture_session_id,
        status,
        previous_status,
        stopped_at,
        summary,
        failure_reason,
    )
    assert row is not None
    return row


async def set_stop_time(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record | None:
    """Fixes the end of a running session's window (once; a repeated stop keeps it)."""
    return await conn.fetchrow(
        "UPDATE capture_sessions AS c SET stopped_at = COALESCE(c.stopped_at, now()), "
        f"updated_at = now() WHERE c.id = $1 AND c.status = 'running' "
        f"RETURNING {CAPTURE_COLUMNS}",
        capture_session_id,
    )


async def set_session_summary(
    conn: asyncpg.Connection, *, capture_session_id: UUID, summary: dict[str, Any]
) -> Record | None:
    return await conn.fetchrow(
        "UPDATE capture_sessions AS c SET summary = $2, updated_at = now() "
        f"WHERE c.id = $1 RETURNING {CAPTURE_COLUMNS}",
        capture_session_id,
        summary,
    )


async def delete_session(conn: asyncpg.Connection, *, capture_session_id: UUID) -> bool:
    result = await conn.execute("DELETE FROM capture_sessions WHERE id = $1", capture_session_id)
    return result != "DELETE 0"


async def fetch_window(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record | None:
    """The session's time window with the ids of its run's sensors."""
    return await conn.fetchrow(
        "SELECT c.id, c.run_id, c.project_id, c.ordinal, c.status, c.started_at, c.stopped_at, "
        "ARRAY(SELECT rs.sensor_id FROM run_sensors rs WHERE rs.run_id = c.run_id "
        "      ORDER BY rs.sensor_id) AS sensor_ids "
        "FROM capture_sessions c WHERE c.id = $1",
        capture_session_id,
    )


async def list_running_windows(conn: asyncpg.Connection) -> list[Record]:
    """Every running session's window (what actors rebuild their state from)."""
    return await conn.fetch(
        "SELECT c.id, c.run_id, c.project_id, c.ordinal, c.status, c.started_at, c.stopped_at, "
        "ARRAY(SELECT rs.sensor_id FROM run_sensors rs WHERE rs.run_id = c.run_id "
        "      ORDER BY rs.sensor_id) AS sensor_ids "
        "FROM capture_sessions c WHERE c.status = 'running' ORDER BY c.started_at"
    )
