"""The per-sensor ingest error journal: rejected points and batches, newest N kept."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from asyncpg import Record

KEEP_PER_SENSOR = 1_000
SAMPLE_MAX_CHARS = 200
MESSAGE_MAX_CHARS = 1_000
ERROR_COLUMNS = "id, sensor_id, created_at, code, message, point_index, sample"

# (code, message, index of the point in its batch or None for the batch, offending input)
IngestError = tuple[str, str, int | None, str | None]


def _truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


async def insert_ingest_errors(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    errors: Sequence[IngestError],
    keep: int = KEEP_PER_SENSOR,
) -> int:
    """Journals errors (samples cut to 200 characters) and prunes the sensor's journal to the
    newest ``keep`` rows; returns how many were written (at most ``keep`` per call)."""
    rows = errors[:keep]
    if not rows:
        return 0
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sensor_ingest_errors (sensor_id, code, message, point_index, sample) "
            "SELECT $1, e.code, e.message, e.point_index, e.sample "
            "FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) "
            "WITH ORDINALITY AS e(code, message, point_index, sample, n) ORDER BY n",
            sensor_id,
            [code[:100] for code, _, _, _ in rows],
            [_truncate(message, MESSAGE_MAX_CHARS) for _, message, _, _ in rows],
            [index for _, _, index, _ in rows],
            [_truncate(sample, SAMPLE_MAX_CHARS) for _, _, _, sample in rows],
        )
        # Cheap pruning: one index probe finds the keep-th newest id, one range delete.
        await conn.execute(
            "DELETE FROM sensor_ingest_errors WHERE sensor_id = $1 AND id < ("
            "SELECT id FROM sensor_ingest_errors WHERE sensor_id = $1 "
            "ORDER BY id DESC OFFSET $2 LIMIT 1)",
            sensor_id,
            keep - 1,
        )
    return len(rows)


async def list_ingest_errors(
    conn: asyncpg.Connection, *, sensor_id: UUID, limit: int, before_id: int | None
) -> list[Record]:
    """Newest first."""
    return await conn.fetch(
        f"SELECT {ERROR_COLUMNS} FROM sensor_ingest_errors WHERE sensor_id = $1 "
        "AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        sensor_id,
        before_id,
        limit,
    )
