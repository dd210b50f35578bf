"""``run_export``: writes an export's file into the artifact store, reporting progress.

The job claims the export with its lease token; a stale or duplicate job does nothing. Rows are
read with a server-side cursor in one snapshot on one connection while progress (and the
lease) is written on another, so readers of ``GET /exports/{id}`` see it move. Telemetry files
are written by ``core.telemetry_export`` (manifest first), the same bytes the streamed export
sends. A crash leaves the export ``running``
with an expiring lease; ``sweep_stalled_jobs`` starts it again from scratch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from core import jobs
from core.artifact_store import new_key
from core.errors import AppError
from core.outbox import write_event
from core.stores import exports as store
from core.telemetry_export import ENCODERS, build_manifest, export_rows
from core.telemetry_read import resolve_target, time_range
from workers.queue import enqueue

log = logging.getLogger("etp.worker.exports")

PROGRESS_EVERY_S = 0.5


class LeaseLost(Exception):
    """Another worker took the export over."""


def _event(row: Any) -> dict[str, Any]:
    return {
        "export_id": str(row["id"]),
        "kind": row["kind"],
        "format": row["format"],
        "status": row["status"],
        "row_count": row["row_count"],
        "size_bytes": row["size_bytes"],
        "error": row["error"],
    }


async def notify_relay(ctx: dict[str, Any]) -> None:
    await enqueue(ctx, jobs.RELAY_OUTBOX, job_id=jobs.relay_job_id())


async def _telemetry_chunks(
    conn: asyncpg.Connection,
    row: Any,
    counted: Callable[[AsyncIterator[list[Any]], int], AsyncIterator[list[Any]]],
) -> tuple[int, AsyncIterator[bytes]]:
    """(row count, encoded file) of a telemetry export, as the streamed export writes it; the
    requester's access is checked again now."""
    params = row["params"]
    target = await resolve_target(
        conn,
        user_id=row["requested_by"],
        sensor_ids=[UUID(s) for s in params.get("sensor_ids") or []],
        run_id=UUID(params["run_id"]) if params.get("run_id") else None,
        capture_session_id=(
            UUID(params["capture_session_id"]) if params.get("capture_session_id") else None
        ),
    )
    start, end = time_range(
        target,
        datetime.fromisoformat(params["from"]) if params.get("from") else None,
        datetime.fromisoformat(params["to"]) if params.get("to") else None,
        now=datetime.now(UTC),
    )
    manifest = await build_manifest(conn, target, start, end, fmt=row["format"])
    total = int(manifest["row_count"])
    batches = counted(export_rows(conn, target, start, end), total)
    return total, ENCODERS[row["format"]](manifest, batches)


async def _table_chunks(
    conn: asyncpg.Connection,
    row: Any,
    counted: Callable[[AsyncIterator[list[Any]], int], AsyncIterator[list[Any]]],
) -> tuple[int, AsyncIterator[bytes]]:
    kind, fmt = row["kind"], row["format"]
    sql, args = store.export_query(kind, row["project_id"], row["params"])
    total = await store.count_rows(conn, kind, sql, args)

    async def encode() -> AsyncIterator[bytes]:
        yield store.encode_header(kind, fmt)
        async for batch in counted(store.iterate_rows(conn, kind, sql, args), total):
            yield store.encode_rows(kind, fmt, batch)

    return total, encode()


async def run_export(ctx: dict[str, Any], *, export_id: str, lease_token: int = 0) -> str:
    """Writes one export. ``lease_token`` 0 is the first run (what the streamed telemetry
    export enqueues for large exports: ``export_id`` only)."""
    config: jobs.WorkerConfig = ctx["config"]
    db = ctx["db"]
    async with db.acquire() as conn:
        row = await store.claim_export(
            conn, export_id=UUID(export_id), lease_token=lease_token, lease_s=config.job_lease_s
        )
    if row is None:
        return "skipped"
    token = row["lease_token"]
    suffix = {"json": ".jsonl"}.get(row["format"], f".{row['format']}")
    key = new_key("exports", suffix)
    written = 0
    try:
        async with db.acquire() as reader, db.acquire() as progress:

            async def counted(
                batches: AsyncIterator[list[Any]], total: int
            ) -> AsyncIterator[list[Any]]:
                nonlocal written
                last = time.monotonic()
                async for batch in batches:
                    written += len(batch)
                    yield batch
                    if time.monotonic() - last >= PROGRESS_EVERY_S:
                        last = time.monotonic()
                        percent = round(min(99.0, 100.0 * written / max(total, 1)), 1)
                        if not await store.set_progress(
                            progress,
                            export_id=row["id"],
                            lease_token=token,
                            percent=percent,
                            lease_s=config.job_lease_s,
                        ):
                            raise LeaseLost

            async with reader.transaction(readonly=True, isolation="repeatable_read"):
                chunks = _telemetry_chunks if row["kind"] == "telemetry" else _table_chunks
                _total, encoded = await chunks(reader, row, counted)
                size, sha256 = await ctx["store"].put_stream(key, encoded)
        async with db.transaction() as conn:
            done = await store.finish_export(
                conn,
                export_id=row["id"],
                lease_token=token,
                status="succeeded",
                storage_key=key,
                row_count=written,
                size_bytes=size,
                sha256=sha256,
            )
            if done is not None:
                await write_event(
                    conn,
                    project_id=done["project_id"],
                    event_type="export.ready",
                    payload=_event(done),
                )
        if done is None:
            ctx["store"].delete(key)
            return "skipped"
    except LeaseLost:
        ctx["store"].delete(key)
        return "skipped"
    except Exception as exc:
        ctx["store"].delete(key)
        reason = exc.message if isinstance(exc, AppError) else "the export failed; see the logs"
        log.exception("export failed", extra={"export_id": export_id})
        async with db.transaction() as conn:
            failed = await store.finish_export(
                conn, export_id=row["id"], lease_token=token, status="failed", error=reason
            )
            if failed is not None:
                await write_event(
                    conn,
                    project_id=failed["project_id"],
                    event_type="export.failed",
                    payload=_event(failed),
                )
        await notify_relay(ctx)
        return "failed"
    await notify_relay(ctx)
    log.info("export ready", extra={"export_id": export_id, "rows": written, "bytes": size})
    return "succeeded"
