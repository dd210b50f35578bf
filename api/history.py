"""Stored telemetry: ``GET /telemetry`` (cursor pages), ``/telemetry/aggregate`` (downsampled),
``/telemetry/export`` (streamed files; big ones become export jobs).

All three are ``@user`` routes: they name sensors, a run or a capture session in the query
string, and ``core.telemetry_read.resolve_target`` checks every one of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis
from quart import Blueprint, Response, current_app, request

from api.context import principal
from api.pagination import decode_cursor, encode_cursor, page_limit
from api.policy import user
from api.responses import json_response
from api.state import services
from core import telemetry_export as export
from core.errors import InvalidInput
from core.jobs import RUN_EXPORT
from core.redis_keys import arq_queue
from core.stores import telemetry as store
from core.telemetry_read import (
    Target,
    aggregate,
    datetime_to_us,
    parse_time,
    parse_uuid_list,
    resolve_target,
    time_range,
    us_to_datetime,
)

bp = Blueprint("history", __name__)

HISTORY_DEFAULT_LIMIT = 1_000
HISTORY_MAX_LIMIT = 10_000


async def _target() -> tuple[Target, datetime, datetime]:
    args = request.args
    run_ids = parse_uuid_list(args.get("run_id"), "run_id")
    session_ids = parse_uuid_list(args.get("capture_session_id"), "capture_session_id")
    async with services().database.acquire() as conn:
        target = await resolve_target(
            conn,
            user_id=principal().user_id,
            sensor_ids=parse_uuid_list(args.get("sensor_ids"), "sensor_ids"),
            run_id=run_ids[0] if run_ids else None,
            capture_session_id=session_ids[0] if session_ids else None,
        )
    start, end = time_range(
        target,
        parse_time(args.get("from"), "from"),
        parse_time(args.get("to"), "to"),
        now=datetime.now(UTC),
    )
    return target, start, end


def _physical() -> bool:
    value = request.args.get("value", "raw")
    if value not in ("raw", "physical"):
        raise InvalidInput("value must be raw or physical", details={"field": "value"})
    return value == "physical"


async def _timescale() -> bool:
    extras = services().extras
    if "timescaledb" not in extras:
        async with services().database.acquire() as conn:
            extras["timescaledb"] = await store.has_timescaledb(conn)
    return bool(extras["timescaledb"])


@bp.get("/telemetry")
@user
async def history() -> Response:
    """Points ordered by (ts, sensor_id); ``next_cursor`` pages never skip or repeat."""
    target, start, end = await _target()
    physical = _physical()
    limit = page_limit(HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT)
    after = None
    raw = decode_cursor(2)
    if raw is not None:
        try:
            after = (us_to_datetime(int(raw[0])), UUID(str(raw[1])))
        except (ValueError, TypeError):
            raise InvalidInput("cursor is not valid", details={"field": "cursor"}) from None
    async with services().database.acquire() as conn:
        rows = await store.fetch_history_page(
            conn,
            sensor_ids=target.sensor_ids,
            run_id=target.run_id,
            capture_session_id=target.capture_session_id,
            start=start,
            end=end,
            after=after,
            limit=limit + 1,
        )
    value = "physical_value" if physical else "raw_value"
    items = [
        {
            "sensor_id": r["sensor_id"],
            "ts": r["ts"],
            "value": r[value],
            "profile_version": r["profile_version"],
            "conversion_status": r["conversion_status"],
            "run_id": r["run_id"],
            "capture_session_id": r["capture_session_id"],
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    next_cursor = (
        encode_cursor([datetime_to_us(last["ts"]), str(last["sensor_id"])]) if last else None
    )
    return json_response(
        {
            "items": items,
            "next_cursor": next_cursor,
            "value": "physical" if physical else "raw",
            "from": start,
            "to": end,
        }
    )


@bp.get("/telemetry/aggregate")
@user
async def downsample() -> Response:
    """min/max/avg/first/last/count per bucket; ``relative=true`` aligns to the session start."""
    target, start, end = await _target()
    raw_max = request.args.get("max_points", "1000")
    if not raw_max.isdigit():
        raise InvalidInput("max_points must be a whole number", details={"field": "max_points"})
    relative = request.args.get("relative", "false").lower() in ("1", "true", "yes")
    timescale = await _timescale()
    async with services().database.acquire() as conn:
        body = await aggregate(
            conn,
            target=target,
            start=start,
            end=end,
            max_points=int(raw_max),
            physical=_physical(),
            relative=relative,
            timescale=timescale,
        )
    return json_response(body)


@bp.get("/telemetry/export")
@user
async def export_telemetry() -> Response:
    """A streamed CSV / JSON-lines / Parquet file; above the size threshold, a 202 job."""
    target, start, end = await _target()
    fmt = export.check_format(request.args.get("format"))
    threshold = int(current_app.config.get("ETP_EXPORT_STREAM_MAX_ROWS", export.STREAM_MAX_ROWS))
    db = services().database
    async with db.acquire() as conn:
        rows = await export.count_rows(conn, target, start, end)
        if rows > threshold:
            job = await store.insert_export(
                conn,
                project_id=target.home_project_id,
                requested_by=principal().user_id,
                export_format=fmt,
                params={
                    "sensor_ids": [str(s) for s in target.sensor_ids],
                    "run_id": str(target.run_id) if target.run_id else None,
                    "capture_session_id": (
                        str(target.capture_session_id) if target.capture_session_id else None
                    ),
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "row_count": rows,
                },
            )
    if rows > threshold:
        return await _enqueue(job)

    async def body() -> Any:
        async with (
            db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            manifest = await export.build_manifest(conn, target, start, end, fmt=fmt)
            async for chunk in export.ENCODERS[fmt](
                manifest, export.export_rows(conn, target, start, end)
            ):
                yield chunk

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = Response(body(), content_type=export.MEDIA_TYPES[fmt])
    extension = "jsonl" if fmt == "json" else fmt
    response.headers["Content-Disposition"] = (
        f'attachment; filename="telemetry-{stamp}.{extension}"'
    )
    response.timeout = None  # streams as long as the rows last
    return response


async def _enqueue(job: Any) -> Response:
    redis = services().redis
    assert redis is not None
    queue = ArqRedis(redis.connection_pool)  # shares the api's pool; nothing to close
    await queue.enqueue_job(
        RUN_EXPORT, export_id=str(job["id"]), _job_id=f"export:{job['id']}", _queue_name=arq_queue()
    )
    body = {
        k: job[k] for k in ("id", "project_id", "kind", "format", "status", "params", "created_at")
    }
    return json_response(body, status=202, headers={"Location": f"/api/v1/exports/{job['id']}"})
