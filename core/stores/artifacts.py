"""Artifacts: the rows describing files attached to runs (the bytes live in an object store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

ARTIFACT_COLUMNS = (
    "id, run_id, project_id, name, type, size_bytes, sha256, content_type, storage_key, "
    "storage, metadata, status, approved_by, approved_at, created_by, created_at, "
    "upload_expires_at"
)


async def lock_run_for_upload(conn: asyncpg.Connection, *, run_id: UUID) -> Record | None:
    """The run's project and status, share-locked while the pending row is inserted."""
    return await conn.fetchrow(
        "SELECT id, project_id, status FROM runs WHERE id = $1 FOR KEY SHARE", run_id
    )


async def insert_pending_artifact(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    project_id: UUID,
    name: str,
    artifact_type: str,
    content_type: str,
    metadata: dict[str, Any],
    sha256: str | None,
    size_bytes: int,
    storage_key: str,
    storage: str,
    created_by: UUID | None,
    upload_expires_at: datetime | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO artifacts (run_id, project_id, name, type, content_type, metadata, sha256, "
        "size_bytes, storage_key, storage, created_by, upload_expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        f"RETURNING {ARTIFACT_COLUMNS}",
        run_id,
        project_id,
        name,
        artifact_type,
        content_type,
        metadata,
        sha256,
        size_bytes,
        storage_key,
        storage,
        created_by,
        upload_expires_at,
    )
    assert row is not None
    return row


async def mark_ready(
    conn: asyncpg.Connection, *, artifact_id: UUID, size_bytes: int, sha256: str
) -> Record | None:
    """Pending → ready with the verified size and digest (``None``: no longer pending)."""
    return await conn.fetchrow(
        "UPDATE artifacts SET status = 'ready', size_bytes = $2, sha256 = $3, "
        "upload_expires_at = NULL WHERE id = $1 AND status = 'pending' "
        f"RETURNING {ARTIFACT_COLUMNS}",
        artifact_id,
        size_bytes,
        sha256,
    )


async def fetch_artifact(conn: asyncpg.Connection, *, artifact_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = $1", artifact_id
    )


async def lock_artifact(conn: asyncpg.Connection, *, artifact_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = $1 FOR UPDATE", artifact_id
    )


async def delete_artifact_row(conn: asyncpg.Connection, *, artifact_id: UUID) -> None:
    await conn.execute("DELETE FROM artifacts WHERE id = $1", artifact_id)


async def set_approved(
    conn: asyncpg.Connection, *, artifact_id: UUID, approved_by: UUID | None
) -> Record:
    row = await conn.fetchrow(
        "UPDATE artifacts SET approved_by = $2, approved_at = now() WHERE id = $1 "
        f"RETURNING {ARTIFACT_COLUMNS}",
        artifact_id,
        approved_by,
    )
    assert row is not None
    return row


async def list_artifacts(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    statuses: tuple[str, ...],
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Record]:
    """Newest first, keyset-paged by (created_at, id)."""
    return await conn.fetch(
        f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE run_id = $1 AND status = ANY($2::text[]) "
        "AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) "
        "ORDER BY created_at DESC, id DESC LIMIT $5",
        run_id,
        list(statuses),
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def fetch_stale_pending(
    conn: asyncpg.Connection, *, created_before: datetime, limit: int
) -> list[Record]:
    """Pending uploads that never finished (their upload window is over)."""
    return await conn.fetch(
        f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE status = 'pending' "
        "AND created_at < $1 AND (upload_expires_at IS NULL OR upload_expires_at < now()) "
        "ORDER BY created_at LIMIT $2",
        created_before,
        limit,
    )
