"""Runs and the sensors their capture sessions record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record
from asyncpg.cursor import CursorFactory

from core.stores.experiments import (
    ListFilters,
    Sort,
    SqlParams,
    filter_conditions,
    keyset_condition,
    order_by,
)

# A running run reports the time elapsed so far; a run that never started has none.
DURATION_SECONDS = (
    "EXTRACT(EPOCH FROM (COALESCE(r.finished_at, CASE WHEN r.status = 'running' THEN now() END)"
    " - r.started_at))::double precision AS duration_seconds"
)
RUN_COLUMNS = (
    "r.id, r.experiment_id, r.project_id, r.name, r.status, r.params, r.env, r.git_sha, r.tags, "
    "r.notes, r.metadata, r.created_by, r.created_at, r.updated_at, r.started_at, "
    f"r.finished_at, {DURATION_SECONDS}"
)
RUN_TEXT_COLUMNS = ("name", "notes")


async def insert_run(
    conn: asyncpg.Connection,
    *,
    experiment_id: UUID,
    project_id: UUID,
    name: str,
    params: dict[str, Any],
    env: dict[str, Any],
    git_sha: str | None,
    tags: list[str],
    notes: str,
    metadata: dict[str, Any],
    created_by: UUID | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO runs AS r (experiment_id, project_id, name, params, env, git_sha, tags, "
        "notes, metadata, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        f"RETURNING {RUN_COLUMNS}",
        experiment_id,
        project_id,
        name,
        params,
        env,
        git_sha,
        tags,
        notes,
        metadata,
        created_by,
    )
    assert row is not None
    return row


async def fetch_run(conn: asyncpg.Connection, *, run_id: UUID) -> Record | None:
    return await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = $1", run_id)


async def lock_run(conn: asyncpg.Connection, *, run_id: UUID) -> Record | None:
    """The run, locked for the transaction (serialises its transitions and capture starts)."""
    return await conn.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = $1 FOR UPDATE", run_id
    )


async def lock_runs_for_member(
    conn: asyncpg.Connection, *, run_ids: Sequence[UUID], user_id: UUID
) -> list[Record]:
    """The runs that exist, locked in id order (no deadlocks), with the caller's role in each
    run's project (``role`` NULL for non-members)."""
    return await conn.fetch(
        f"SELECT {RUN_COLUMNS}, m.role FROM runs r "
        "LEFT JOIN project_members m ON m.project_id = r.project_id AND m.user_id = $2 "
        "WHERE r.id = ANY($1::uuid[]) ORDER BY r.id FOR UPDATE OF r",
        list(run_ids),
        user_id,
    )


def _runs_query(
    *,
    project_id: UUID,
    filters: ListFilters,
    sort: Sort,
    after: tuple[Any, UUID] | None = None,
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    params = SqlParams(project_id)
    conditions = [
        "r.project_id = $1",
        *filter_conditions(filters, params, alias="r", text_columns=RUN_TEXT_COLUMNS),
        *keyset_condition(sort, after, params, alias="r"),
    ]
    sql = (
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE {' AND '.join(conditions)} "
        f"{order_by(sort, alias='r')}"
    )
    if limit is not None:
        sql += f" LIMIT {params(limit)}"
    return sql, params.values


async def list_runs(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    filters: ListFilters,
    sort: Sort,
    after: tuple[Any, UUID] | None,
    limit: int,
) -> list[Record]:
    """One page of the project's runs (``filters.experiment_id`` narrows to an experiment)."""
    sql, values = _runs_query(
        project_id=project_id, filters=filters, sort=sort, after=after, limit=limit
    )
    return await conn.fetch(sql, *values)


def iterate_runs(
    conn: asyncpg.Connection, *, project_id: UUID, filters: ListFilters, sort: Sort
) -> CursorFactory:
    """A server-side cursor over every matching run (use inside a transaction)."""
    sql, values = _runs_query(project_id=project_id, filters=filters, sort=sort)
    return conn.cursor(sql, *values, prefetch=500)


async def fetch_param_keys(
    conn: asyncpg.Connection, *, project_id: UUID, filters: ListFilters
) -> list[str]:
    """Every params key among the matching runs, sorted (the CSV export's columns)."""
    params = SqlParams(project_id)
    conditions = [
        "r.project_id = $1",
        *filter_conditions(filters, params, alias="r", text_columns=RUN_TEXT_COLUMNS),
    ]
    rows = await conn.fetch(
        "SELECT DISTINCT k FROM runs r CROSS JOIN LATERAL jsonb_object_keys(r.params) AS k "
        f"WHERE {' AND '.join(conditions)} ORDER BY k",
        *params.values,
    )
    return [row["k"] for row in rows]


async def update_run(
    conn: asyncpg.Connection, *, run_id: UUID, changes: dict[str, Any]
) -> Record | None:
    allowed = {"name", "params", "env", "git_sha", "tags", "notes", "metadata"}
    assert set(changes) <= allowed
    assignments = [f"{column} = ${i}" for i, column in enumerate(changes, start=2)]
    return await conn.fetchrow(
        f"UPDATE runs AS r SET {', '.join([*assignments, 'updated_at = now()'])} "
        f"WHERE r.id = $1 RETURNING {RUN_COLUMNS}",
        run_id,
        *changes.values(),
    )


async def set_runs_status(
    conn: asyncpg.Connection, *, run_ids: Sequence[UUID], status: str
) -> list[Record]:
    """Moves the runs to ``status``; ``running`` stamps started_at once, an end finished_at."""
    return await conn.fetch(
        "UPDATE runs AS r SET status = $2, updated_at = now(), "
        "started_at = CASE WHEN $2 = 'running' THEN COALESCE(r.started_at, now()) "
        "ELSE r.started_at END, "
        "finished_at = CASE WHEN $2 IN ('succeeded', 'failed') THEN now() "
        "ELSE r.finished_at END "
        f"WHERE r.id = ANY($1::uuid[]) RETURNING {RUN_COLUMNS}",
        list(run_ids),
        status,
    )


async def set_runs_tags(
    conn: asyncpg.Connection, *, tags_by_run: Sequence[tuple[UUID, list[str]]]
) -> None:
    await conn.executemany(
        "UPDATE runs SET tags = $2, updated_at = now() WHERE id = $1", list(tags_by_run)
    )


async def fetch_runs(conn: asyncpg.Connection, *, run_ids: Sequence[UUID]) -> list[Record]:
    return await conn.fetch(
        f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = ANY($1::uuid[])", list(run_ids)
    )


async def fetch_running_capture_sessions(
    conn: asyncpg.Connection, *, run_ids: Sequence[UUID]
) -> dict[UUID, Record]:
    """The running capture session of each of the runs that has one."""
    rows = await conn.fetch(
        "SELECT id, run_id, ordinal FROM capture_sessions "
        "WHERE run_id = ANY($1::uuid[]) AND status = 'running'",
        list(run_ids),
    )
    return {row["run_id"]: row for row in rows}


# Run sensors -----------------------------------------------------------------------------------

SENSOR_COLUMNS = (
    "s.id, s.project_id, s.name, s.type, s.input_unit, s.display_unit, s.expected_rate_hz"
)


async def list_run_sensors(conn: asyncpg.Connection, *, run_id: UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT {SENSOR_COLUMNS} FROM run_sensors rs JOIN sensors s ON s.id = rs.sensor_id "
        "WHERE rs.run_id = $1 ORDER BY s.name, s.id",
        run_id,
    )


async def fetch_readable_sensor_ids(
    conn: asyncpg.Connection, *, project_id: UUID, sensor_ids: Sequence[UUID]
) -> set[UUID]:
    """Those of ``sensor_ids`` that the project owns or that are shared with it."""
    rows = await conn.fetch(
        "SELECT s.id FROM sensors s WHERE s.id = ANY($1::uuid[]) AND (s.project_id = $2 "
        "OR EXISTS (SELECT 1 FROM sensor_projects sp "
        "           WHERE sp.sensor_id = s.id AND sp.project_id = $2))",
        list(sensor_ids),
        project_id,
    )
    return {row["id"] for row in rows}


async def replace_run_sensors(
    conn: asyncpg.Connection, *, run_id: UUID, sensor_ids: Sequence[UUID]
) -> None:
    await conn.execute("DELETE FROM run_sensors WHERE run_id = $1", run_id)
    await conn.execute(
        "INSERT INTO run_sensors (run_id, sensor_id) SELECT $1, unnest($2::uuid[])",
        run_id,
        list(sensor_ids),
    )


async def fetch_run_sensor_ids(conn: asyncpg.Connection, *, run_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT sensor_id FROM run_sensors WHERE run_id = $1 ORDER BY sensor_id", run_id
    )
    return [row["sensor_id"] for row in rows]
