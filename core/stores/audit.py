"""The audit log: who did what to which entity, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

AUDIT_COLUMNS = (
    "id, project_id, actor_id, actor_role, action, entity_type, entity_id, before, after, "
    "request_id, created_at"
)


async def insert_audit_event(
    conn: asyncpg.Connection,
    *,
    project_id: UUID | None,
    actor_id: UUID | None,
    actor_role: str | None,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: Any = None,
    after: Any = None,
    request_id: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_events (project_id, actor_id, actor_role, action, entity_type, "
        "entity_id, before, after, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        project_id,
        actor_id,
        actor_role,
        action,
        entity_type,
        None if entity_id is None else str(entity_id),
        before,
        after,
        request_id,
    )


async def list_audit_events(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    limit: int,
    before_id: int | None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_id: UUID | None = None,
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
) -> list[Record]:
    """Newest first; the actor's current email and name ride along (NULL once deleted)."""
    columns = ", ".join(f"a.{c.strip()}" for c in AUDIT_COLUMNS.split(","))
    return await conn.fetch(
        f"SELECT {columns}, u.email AS actor_email, u.display_name AS actor_name "
        "FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id WHERE a.project_id = $1 "
        "AND ($2::bigint IS NULL OR a.id < $2) AND ($3::text IS NULL OR a.entity_type = $3) "
        "AND ($4::text IS NULL OR a.entity_id = $4) AND ($5::uuid IS NULL OR a.actor_id = $5) "
        "AND ($6::timestamptz IS NULL OR a.created_at >= $6) "
        "AND ($7::timestamptz IS NULL OR a.created_at < $7) "
        "ORDER BY a.id DESC LIMIT $8",
        project_id,
        before_id,
        entity_type,
        entity_id,
        actor_id,
        from_ts,
        to_ts,
        limit,
    )


async def delete_audit_events_before(conn: asyncpg.Connection, *, cutoff: datetime) -> int:
    result = await conn.execute("DELETE FROM audit_events WHERE created_at < $1", cutoff)
    return int(result.split()[-1])
