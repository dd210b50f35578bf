"""Experiments, and the listing filters that experiments and runs share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record
from asyncpg.cursor import CursorFactory

EXPERIMENT_COLUMNS = (
    "e.id, e.project_id, e.name, e.description, e.experiment_type, e.status, e.tags, "
    "e.metadata, e.created_by, e.created_at, e.updated_at, e.archived_at"
)


@dataclass(frozen=True, slots=True)
class ListFilters:
    """What a listing or an export keeps; empty fields keep everything."""

    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # all of them
    query: str | None = None  # case-insensitive substring of the text columns
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    experiment_id: UUID | None = None  # runs only


@dataclass(frozen=True, slots=True)
class Sort:
    """A keyset order: ``column`` then ``id``, both ascending or both descending."""

    column: str  # "created_at" or "name"
    descending: bool


NEWEST_FIRST = Sort("created_at", descending=True)


class SqlParams:
    """Numbered ``$n`` placeholders for a query assembled from optional parts."""

    def __init__(self, *initial: Any):
        self.values: list[Any] = list(initial)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def escape_like(text: str) -> str:
    r"""``text`` matched literally inside LIKE (``%``, ``_`` and ``\`` escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_conditions(
    filters: ListFilters, params: SqlParams, *, alias: str, text_columns: Sequence[str]
) -> list[str]:
    """SQL conditions (to AND together) for ``filters`` on the table aliased ``alias``."""
    conditions: list[str] = []
    if filters.statuses:
        conditions.append(f"{alias}.status = ANY({params(list(filters.statuses))}::text[])")
    if filters.tags:
        conditions.append(f"{alias}.tags @> {params(list(filters.tags))}::text[]")
    if filters.query:
        pattern = params(f"%{escape_like(filters.query)}%")
        matches = " OR ".join(f"{alias}.{column} ILIKE {pattern}" for column in text_columns)
        conditions.append(f"({matches})")
    if filters.created_after is not None:
        conditions.append(f"{alias}.created_at >= {params(filters.created_after)}")
    if filters.created_before is not None:
        conditions.append(f"{alias}.created_at < {params(filters.created_before)}")
    if filters.experiment_id is not None:
        conditions.append(f"{alias}.experiment_id = {params(filters.experiment_id)}")
    return conditions


def keyset_condition(
    sort: Sort, after: tuple[Any, UUID] | None, params: SqlParams, *, alias: str
) -> list[str]:
    """The condition that starts a page after the row ``after`` (``[]`` for the first page)."""
    if after is None:
        return []
    operator = "<" if sort.descending else ">"
    return [
        f"({alias}.{sort.column}, {alias}.id) {operator} ({params(after[0])}, {params(after[1])})"
    ]


def order_by(sort: Sort, *, alias: str) -> str:
    direction = "DESC" if sort.descending else "ASC"
    return f"ORDER BY {alias}.{sort.column} {direction}, {alias}.id {direction}"


# Experiments ---------------------------------------------------------------------------------

EXPERIMENT_TEXT_COLUMNS = ("name", "description")


async def insert_experiment(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    name: str,
    description: str,
    experiment_type: str,
    tags: list[str],
    metadata: dict[str, Any],
    created_by: UUID | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO experiments AS e (project_id, name, description, experiment_type, tags, "
        f"metadata, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EXPERIMENT_COLUMNS}",
        project_id,
        name,
        description,
        experiment_type,
        tags,
        metadata,
        created_by,
    )
    assert row is not None
    return row


async def fetch_experiment(conn: asyncpg.Connection, *, experiment_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = $1", experiment_id
    )


async def lock_experiment(
    conn: asyncpg.Connection, *, experiment_id: UUID, exclusive: bool = True
) -> Record | None:
    """The experiment, locked for the transaction.

    Status changes take the exclusive lock; runs moving to ``running`` take the shared one,
    so an archive and a run start never both succeed.
    """
    mode = "UPDATE" if exclusive else "SHARE"
    return await conn.fetchrow(
        f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = $1 FOR {mode}",
        experiment_id,
    )


def _experiments_query(
    *,
    project_id: UUID,
    filters: ListFilters,
    after: tuple[Any, UUID] | None = None,
    limit: int | None = None,
) -> tuple[str, list[Any]]:
    params = SqlParams(project_id)
    conditions = [
        "e.project_id = $1",
        *filter_conditions(filters, params, alias="e", text_columns=EXPERIMENT_TEXT_COLUMNS),
        *keyset_condition(NEWEST_FIRST, after, params, alias="e"),
    ]
    sql = (
        f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE {' AND '.join(conditions)} "
        f"{order_by(NEWEST_FIRST, alias='e')}"
    )
    if limit is not None:
        sql += f" LIMIT {params(limit)}"
    return sql, params.values


async def list_experiments(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    filters: ListFilters,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Record]:
    """Newest first, starting after the keyset ``after``."""
    sql, values = _experiments_query(
        project_id=project_id, filters=filters, after=after, limit=limit
    )
    return await conn.fetch(sql, *values)


def iterate_experiments(
    conn: asyncpg.Connection, *, project_id: UUID, filters: ListFilters
) -> CursorFactory:
    """A server-side cursor over every matching experiment (use inside a transaction)."""
    sql, values = _experiments_query(project_id=project_id, filters=filters)
    return conn.cursor(sql, *values, prefetch=500)


async def update_experiment(
    conn: asyncpg.Connection, *, experiment_id: UUID, changes: dict[str, Any]
) -> Record | None:
    allowed = {"name", "description", "experiment_type", "tags", "metadata"}
    assert set(changes) <= allowed
    assignments = [f"{column} = ${i}" for i, column in enumerate(changes, start=2)]
    return await conn.fetchrow(
        f"UPDATE experiments AS e SET {', '.join([*assignments, 'updated_at = now()'])} "
        f"WHERE e.id = $1 RETURNING {EXPERIMENT_COLUMNS}",
        experiment_id,
        *changes.values(),
    )


async def set_experiment_status(
    conn: asyncpg.Connection, *, experiment_id: UUID, status: str
) -> Record | None:
    return await conn.fetchrow(
        "UPDATE experiments AS e SET status = $2, updated_at = now(), "
        "archived_at = CASE WHEN $2 = 'archived' THEN now() END "
        f"WHERE e.id = $1 RETURNING {EXPERIMENT_COLUMNS}",
        experiment_id,
        status,
    )


async def delete_experiment(conn: asyncpg.Connection, *, experiment_id: UUID) -> bool:
    return await conn.execute("DELETE FROM experiments WHERE id = $1", experiment_id) != "DELETE 0"


async def fetch_running_run_names(
    conn: asyncpg.Connection, *, experiment_id: UUID, limit: int = 10
) -> list[Record]:
    """Some of the experiment's running runs (id, name), to name them in a refusal."""
    return await conn.fetch(
        "SELECT id, name FROM runs WHERE experiment_id = $1 AND status = 'running' "
        "ORDER BY created_at LIMIT $2",
        experiment_id,
        limit,
    )


async def count_runs_by_status(conn: asyncpg.Connection, *, experiment_id: UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM runs WHERE experiment_id = $1 GROUP BY status",
        experiment_id,
    )
    return {row["status"]: row["n"] for row in rows}
