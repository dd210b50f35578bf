"""``/profiles/{id}/backfill-preview``, ``/profiles/{id}/backfill``, ``/profiles/{id}/backfills``.

A preview is a dry run over the profile's window (or from ``from``): how many points would
change and, per capture session, the physical values' min/max/mean before and after. Starting a
backfill queues the worker job, marks the affected capture sessions ``backfilling`` and tells
the sensor's live writer to reload its profiles, so points arriving meanwhile already use them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import validate_request

from actors import SensorGateway
from api.context import audit_context, project_role
from api.idempotency import idempotent
from api.pagination import decode_time_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from api.webhooks import enqueue_job, notify_relay
from core import jobs
from core.backfill import preview_backfill, start_backfill
from core.errors import InvalidInput
from core.stores import backfill as store

bp = Blueprint("backfill", __name__)


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: datetime | None = Field(default=None, alias="from")


def _from(data: BackfillIn) -> datetime | None:
    if data.from_ is not None and data.from_.utcoffset() is None:
        raise InvalidInput("from needs a UTC offset", details={"field": "from"})
    return data.from_


def _gateway() -> SensorGateway:
    extras = services().extras
    gateway = extras.get("sensor_gateway")
    if gateway is None:
        gateway = extras["sensor_gateway"] = SensorGateway(services().settings)
    return gateway


def backfill_json(row: Any) -> dict[str, Any]:
    body = {
        k: row[k]
        for k in (
            "id",
            "profile_id",
            "sensor_id",
            "status",
            "range_from",
            "range_to",
            "chunk_points",
            "rows_total",
            "rows_done",
            "rows_changed",
            "chunks_done",
            "session_ids",
            "attempts",
            "error",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        )
    }
    total = row["rows_total"]
    done = row["status"] == "succeeded"
    body["progress"] = (
        100.0 if done else round(100.0 * row["rows_done"] / total, 1) if total else 0.0
    )
    return body


@bp.post("/profiles/<uuid:profile_id>/backfill-preview")
@project("profile.write")
@validate_request(BackfillIn)
async def backfill_preview(profile_id: UUID, data: BackfillIn) -> Response:
    config = jobs.worker_config(services().settings)
    async with services().database.transaction() as conn:
        result = await preview_backfill(
            conn,
            profile_id=profile_id,
            from_ts=_from(data),
            role=project_role(),
            audit=audit_context(),
            max_points=config.backfill_preview_max_points,
        )
    return json_response(result)


@bp.post("/profiles/<uuid:profile_id>/backfill")
@project("profile.write")
@idempotent
@validate_request(BackfillIn)
async def backfill_start(profile_id: UUID, data: BackfillIn) -> Response:
    """Starts the backfill job (202); follow it with ``GET /profiles/{id}/backfills``."""
    config = jobs.worker_config(services().settings)
    async with services().database.acquire() as conn:
        row = await start_backfill(
            conn,
            profile_id=profile_id,
            from_ts=_from(data),
            role=project_role(),
            audit=audit_context(),
            chunk_points=config.backfill_chunk_points,
        )
    await _gateway().reload_profiles(row["sensor_id"])
    await enqueue_job(
        jobs.RUN_BACKFILL,
        job_id=jobs.backfill_job_id(row["id"], row["lease_token"]),
        backfill_id=str(row["id"]),
        lease_token=row["lease_token"],
    )
    await notify_relay()
    return json_response(backfill_json(row), status=202)


@bp.get("/profiles/<uuid:profile_id>/backfills")
@project("profile.read")
async def list_backfills(profile_id: UUID) -> Response:
    limit = page_limit()
    before = decode_time_cursor()
    async with services().database.acquire() as conn:
        rows = await store.list_jobs(conn, profile_id=profile_id, limit=limit + 1, before=before)
    return json_response(
        page(
            rows,
            limit,
            serialise=backfill_json,
            cursor_of=lambda r: (r["created_at"].isoformat(), str(r["id"])),
        )
    )
