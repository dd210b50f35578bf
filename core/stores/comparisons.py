"""Comparisons: stored definitions, and the reads that assemble one (runs with the caller's
role, capture sessions, the sensors that recorded in them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.stores.runs import RUN_COLUMNS

COMPARISON_COLUMNS = "id, created_by, run_ids, baseline_run_id, options, created_at"


async def insert_comparison(
    conn: asyncpg.Connection,
    *,
    created_by: UUID,
    run_ids: Sequence[UUID],
    baseline_run_id: UUID,
    options: dict[str, Any],
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO comparisons (created_by, run_ids, baseline_run_id, options) "
        f"VALUES ($1, $2, $3, $4) RETURNING {COMPARISON_COLUMNS}",
        created_by,
        list(run_ids),
        baseline_run_id,
        options,
    )
    assert row is not None
    return row


async def fetch_comparison(conn: asyncpg.Connection, *, comparison_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {COMPARISON_COLUMNS} FROM comparisons WHERE id = $1", comparison_id
    )


async def fetch_runs_with_role(
    conn: asyncpg.Connection, *, run_ids: Sequence[UUID], user_id: UUID
) -> list[Record]:
    """The runs that exist, with their experiment's name and the caller's role in each run's
    project (``role`` NULL for non-members)."""
    return await conn.fetch(
        f"SELECT {RUN_COLUMNS}, e.name AS experiment_name, m.role FROM runs r "
        "JOIN experiments e ON e.id = r.experiment_id "
        "LEFT JOIN project_members m ON m.project_id = r.project_id AND m.user_id = $2 "
        "WHERE r.id = ANY($1::uuid[])",
        list(run_ids),
        user_id,
    )


async def fetch_started_sessions(
    conn: asyncpg.Connection, *, run_ids: Sequence[UUID]
) -> list[Record]:
    """Capture sessions of the runs that have started, by run and ordinal."""
    return await conn.fetch(
        "SELECT id, run_id, project_id, ordinal, status, started_at, stopped_at "
        "FROM capture_sessions WHERE run_id = ANY($1::uuid[]) AND started_at IS NOT NULL "
        "ORDER BY run_id, ordinal",
        list(run_ids),
    )


async def fetch_session_sensors(
    conn: asyncpg.Connection, *, session_ids: Sequence[UUID]
) -> list[Record]:
    """The sensors with points in each session (from the per-session minute rollup)."""
    return await conn.fetch(
        """
        SELECT DISTINCT r.capture_session_id, s.id, s.name, s.input_unit, s.display_unit,
               s.created_at
        FROM telemetry_session_1m r JOIN sensors s ON s.id = r.sensor_id
        WHERE r.capture_session_id = ANY($1::uuid[])
        ORDER BY r.capture_session_id, s.created_at, s.id
        """,
        list(session_ids),
    )
