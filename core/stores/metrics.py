"""Run metrics: append-only points (``run_metrics``) and per-name summaries
(``run_metric_summaries``), upserted in the transaction that appends the points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

POINT_COLUMNS = ("run_id", "name", "step", "value", "ts")
SUMMARY_COLUMNS = (
    "run_id, name, count, sum / count AS avg, min, max, first_step, last_step, last_value, last_ts"
)


async def lock_run_for_append(conn: asyncpg.Connection, *, run_id: UUID) -> Record | None:
    """The run's status, share-locked so it cannot be archived while points are appended."""
    return await conn.fetchrow(
        "SELECT id, project_id, status FROM runs WHERE id = $1 FOR KEY SHARE", run_id
    )


async def copy_points(
    conn: asyncpg.Connection, *, records: Sequence[tuple[UUID, str, int, float, datetime]]
) -> None:
    """Binary COPY of (run_id, name, step, value, ts) rows; ``seq`` is generated."""
    await conn.copy_records_to_table("run_metrics", records=records, columns=POINT_COLUMNS)


async def upsert_summaries(
    conn: asyncpg.Connection, *, run_id: UUID, summaries: Sequence[Sequence[Any]]
) -> None:
    """Merges per-name batch summaries (name, count, sum, min, max, first_step, last_step,
    last_value, last_ts). Rows go in name order, so concurrent batches lock in one order."""
    columns: list[Sequence[Any]] = list(zip(*summaries, strict=True)) or [()] * 9
    await conn.execute(
        """
        INSERT INTO run_metric_summaries AS s
            (run_id, name, count, sum, min, max, first_step, last_step, last_value, last_ts)
        SELECT $1, u.* FROM unnest($2::text[], $3::bigint[], $4::float8[], $5::float8[],
                                   $6::float8[], $7::bigint[], $8::bigint[], $9::float8[],
                                   $10::timestamptz[]) AS u
        ORDER BY 2
        ON CONFLICT (run_id, name) DO UPDATE SET
            count = s.count + excluded.count,
            sum = s.sum + excluded.sum,
            min = least(s.min, excluded.min),
            max = greatest(s.max, excluded.max),
            first_step = least(s.first_step, excluded.first_step),
            last_step = greatest(s.last_step, excluded.last_step),
            last_value = CASE WHEN (excluded.last_step, excluded.last_ts)
                                   >= (s.last_step, s.last_ts)
                              THEN excluded.last_value ELSE s.last_value END,
            last_ts = CASE WHEN (excluded.last_step, excluded.last_ts)
                                >= (s.last_step, s.last_ts)
                           THEN excluded.last_ts ELSE s.last_ts END,
            updated_at = now()
        """,
        run_id,
        *(list(column) for column in columns),
    )


async def fetch_summaries(
    conn: asyncpg.Connection,
    *,
    run_ids: Sequence[UUID],
    names: Sequence[str] | None = None,
    after_name: str | None = None,
    limit: int | None = None,
) -> list[Record]:
    """Summaries of the runs' metrics, by run then name."""
    return await conn.fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM run_metric_summaries "
        "WHERE run_id = ANY($1::uuid[]) AND ($2::text[] IS NULL OR name = ANY($2::text[])) "
        "AND ($3::text IS NULL OR name > $3) ORDER BY run_id, name LIMIT $4",
        list(run_ids),
        None if names is None else list(names),
        after_name,
        limit,
    )


async def fetch_points_page(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    names: Sequence[str] | None,
    step_from: int | None,
    step_to: int | None,
    after: tuple[str, int, int] | None,
    limit: int,
) -> list[Record]:
    """Raw points in (name, step, seq) order after the keyset ``after``."""
    keyset = "AND (name, step, seq) > ($5, $6, $7)" if after else ""
    args: list[Any] = [run_id, None if names is None else list(names), step_from, step_to]
    if after:
        args.extend(after)
    return await conn.fetch(
        "SELECT name, step, value, ts, seq FROM run_metrics WHERE run_id = $1 "
        "AND ($2::text[] IS NULL OR name = ANY($2::text[])) "
        "AND ($3::bigint IS NULL OR step >= $3) AND ($4::bigint IS NULL OR step <= $4) "
        f"{keyset} ORDER BY name, step, seq LIMIT ${len(args) + 1}",
        *args,
        limit,
    )


async def aggregate_step_buckets(
    conn: asyncpg.Connection, *, run_id: UUID, plans: Sequence[tuple[str, int, int, int]]
) -> list[Record]:
    """Per (name, bucket): count, min, max, avg, first, last and the steps it spans, for
    series planned as (name, lowest step, highest step, bucket width in steps)."""
    if not plans:
        return []
    names, lows, highs, widths = (list(c) for c in zip(*plans, strict=True))
    return await conn.fetch(
        """
        SELECT p.name, (m.step - p.lo) / p.width AS bucket, p.lo, p.width,
               count(*) AS count, min(m.value) AS min, max(m.value) AS max,
               avg(m.value) AS avg,
               (array_agg(m.value ORDER BY m.step, m.seq))[1] AS first,
               (array_agg(m.value ORDER BY m.step DESC, m.seq DESC))[1] AS last,
               min(m.step) AS first_step, max(m.step) AS last_step
        FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS p(name, lo, hi, width)
        JOIN run_metrics m ON m.run_id = $1 AND m.name = p.name
                          AND m.step >= p.lo AND m.step <= p.hi
        GROUP BY p.name, p.lo, p.width, 2
        ORDER BY p.name, 2
        """,
        run_id,
        names,
        lows,
        highs,
        widths,
    )
