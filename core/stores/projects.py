"""Projects and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

PROJECT_COLUMNS = (
    "p.id, p.name, p.description, p.settings, p.created_by, p.created_at, p.updated_at"
)


async def insert_project(
    conn: asyncpg.Connection, *, name: str, description: str, created_by: UUID
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO projects AS p (name, description, created_by) VALUES ($1, $2, $3) "
        f"RETURNING {PROJECT_COLUMNS}",
        name,
        description,
        created_by,
    )
    assert row is not None
    return row


async def fetch_project_for_member(
    conn: asyncpg.Connection, *, project_id: UUID, user_id: UUID
) -> Record | None:
    """The project with the caller's role; ``None`` when it is missing or foreign."""
    return await conn.fetchrow(
        f"SELECT {PROJECT_COLUMNS}, m.role FROM projects p "
        "JOIN project_members m ON m.project_id = p.id AND m.user_id = $2 WHERE p.id = $1",
        project_id,
        user_id,
    )


async def fetch_role(conn: asyncpg.Connection, *, project_id: UUID, user_id: UUID) -> str | None:
    return await conn.fetchval(
        "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        project_id,
        user_id,
    )


async def list_projects_for_member(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    limit: int,
    after: tuple[datetime, UUID] | None,
    query: str | None,
) -> list[Record]:
    return await conn.fetch(
        f"SELECT {PROJECT_COLUMNS}, m.role FROM projects p "
        "JOIN project_members m ON m.project_id = p.id AND m.user_id = $1 "
        "WHERE ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2, $3::uuid)) "
        "AND ($5::text IS NULL OR p.name ILIKE '%' || $5 || '%' "
        "     OR p.description ILIKE '%' || $5 || '%') "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT $4",
        user_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
        query,
    )


async def update_project(
    conn: asyncpg.Connection, *, project_id: UUID, changes: dict[str, Any]
) -> Record | None:
    allowed = {"name", "description"}
    assert set(changes) <= allowed
    if not changes:
        return await conn.fetchrow(
            f"SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = $1", project_id
        )
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    return await conn.fetchrow(
        f"UPDATE projects AS p SET {assignments}, updated_at = now() WHERE p.id = $1 "
        f"RETURNING {PROJECT_COLUMNS}",
        project_id,
        *changes.values(),
    )


async def delete_project(conn: asyncpg.Connection, *, project_id: UUID) -> bool:
    return await conn.execute("DELETE FROM projects WHERE id = $1", project_id) != "DELETE 0"


# Members -------------------------------------------------------------------------------------

MEMBER_COLUMNS = "m.user_id, u.email, u.display_name, m.role, m.created_at"


async def insert_member(
    conn: asyncpg.Connection, *, project_id: UUID, user_id: UUID, role: str
) -> Record:
    row = await conn.fetchrow(
        "WITH m AS (INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3) "
        "RETURNING *) "
        f"SELECT {MEMBER_COLUMNS} FROM m JOIN users u ON u.id = m.user_id",
        project_id,
        user_id,
        role,
    )
    assert row is not None
    return row


async def list_members(conn: asyncpg.Connection, *, project_id: UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT {MEMBER_COLUMNS} FROM project_members m JOIN users u ON u.id = m.user_id "
        "WHERE m.project_id = $1 ORDER BY m.created_at, u.email",
        project_id,
    )


async def lock_members(conn: asyncpg.Connection, *, project_id: UUID) -> list[Record]:
    """Members, locked for the transaction (serialises last-owner checks)."""
    return await conn.fetch(
        "SELECT user_id, role FROM project_members WHERE project_id = $1 FOR UPDATE", project_id
    )


async def update_member_role(
    conn: asyncpg.Connection, *, project_id: UUID, user_id: UUID, role: str
) -> Record | None:
    return await conn.fetchrow(
        "WITH m AS (UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2 "
        "RETURNING *) "
        f"SELECT {MEMBER_COLUMNS} FROM m JOIN users u ON u.id = m.user_id",
        project_id,
        user_id,
        role,
    )


async def delete_member(conn: asyncpg.Connection, *, project_id: UUID, user_id: UUID) -> bool:
    result = await conn.execute(
        "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2", project_id, user_id
    )
    return result != "DELETE 0"
