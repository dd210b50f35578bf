"""Run metrics: ``POST/GET /runs/{rid}/metrics``, ``GET /runs/{rid}/metrics/summary``, and the
published limits of metrics, artifacts and comparisons at ``GET /limits``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, Response, request
from quart_schema import document_request

from api.idempotency import idempotent
from api.pagination import decode_cursor, encode_cursor, page_limit
from api.policy import project, public
from api.responses import json_response
from api.state import services
from core import comparisons as comparisons_domain
from core import metrics as domain
from core.errors import InvalidInput
from core.object_store import ArtifactSettings
from core.redis_keys import live_run_metrics_channel
from core.stores import metrics as store

log = logging.getLogger("etp.api")
bp = Blueprint("metrics", __name__)
PUBLISH_TIMEOUT_S = 1.0


class MetricIn(BaseModel):
    name: str = Field(
        description=f"1–{domain.NAME_MAX} characters of letters, digits, '_', '.', '/', '-', space"
    )
    value: float = Field(description="a finite number")
    step: int = Field(default=0, ge=domain.STEP_MIN, le=domain.STEP_MAX)
    ts: str | float | None = Field(
        default=None, description="ISO-8601 with an offset or epoch ms; default: arrival time"
    )


class MetricsIn(BaseModel):
    metrics: list[MetricIn] = Field(
        min_length=1,
        max_length=domain.BATCH_MAX,
        description=f"1 to {domain.BATCH_MAX} points (more: 413 naming the limit); "
        f"a request body is at most {domain.BODY_MAX_BYTES} bytes",
    )


@bp.get("/limits")
@public
async def limits() -> Response:
    """Published limits of metric batches, artifacts, comparisons and telemetry ingest."""
    settings = services().settings
    return json_response(
        {
            "metrics": domain.LIMITS,
            "artifacts": {"max_bytes": ArtifactSettings.from_env().max_bytes},
            "comparisons": comparisons_domain.LIMITS,
            "telemetry": {
                "points_per_request": settings.ingest_max_points,
                "request_max_bytes": settings.ingest_max_bytes,
            },
        }
    )


@bp.post("/runs/<uuid:run_id>/metrics")
@project("metrics.write")
@idempotent
@document_request(MetricsIn)
async def log_metrics(run_id: UUID) -> Response:
    """Appends up to 10,000 points in one transaction (all or nothing); 413 over the batch or
    body limit, 422 naming the invalid entries. Live views get the points after the commit."""
    domain.check_body_size(request.content_length)
    body = await request.get_data(as_text=False)
    assert isinstance(body, bytes)
    points = domain.parse_metric_batch(body, now=datetime.now(UTC))
    async with services().database.acquire() as conn:
        accepted = await domain.append_metrics(conn, run_id=run_id, points=points)
    await _publish(run_id, domain.live_message(run_id, points))
    return json_response({"accepted": accepted})


async def _publish(run_id: UUID, message: bytes) -> None:
    """Best effort: live views are a convenience; the points are already committed."""
    redis = services().redis
    if redis is None:
        return
    try:
        await asyncio.wait_for(
            redis.publish(live_run_metrics_channel(run_id), message), PUBLISH_TIMEOUT_S
        )
    except Exception as exc:  # Redis down or slow: never fail a committed write
        log.warning(
            "metrics live publish failed", extra={"run_id": str(run_id), "error": repr(exc)}
        )


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number", details={"field": name}) from None


@bp.get("/runs/<uuid:run_id>/metrics")
@project("metrics.read")
async def read_metrics(run_id: UUID) -> Response:
    """With ``max_points``: every series (or ``name=a,b``) downsampled into at most that many
    step buckets, each with count, exact min and max, avg, first and last. Without it: the raw
    points in (name, step) order, cursor-paged (``limit`` up to 10,000). ``step_from`` and
    ``step_to`` narrow both."""
    names = domain.parse_names(request.args.get("name"))
    step_from, step_to = _int_arg("step_from"), _int_arg("step_to")
    max_points = _int_arg("max_points")
    async with services().database.acquire() as conn:
        if max_points is not None:
            body = await domain.downsample(
                conn,
                run_id=run_id,
                names=names,
                max_points=max_points,
                step_from=step_from,
                step_to=step_to,
            )
            return json_response(body)
        limit = page_limit(domain.PAGE_DEFAULT, domain.PAGE_MAX)
        rows = await store.fetch_points_page(
            conn,
            run_id=run_id,
            names=names,
            step_from=step_from,
            step_to=step_to,
            after=domain.parse_after(decode_cursor(3)),
            limit=limit + 1,
        )
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor([last["name"], last["step"], last["seq"]])
    return json_response(
        {"items": [domain.point_json(r) for r in items], "next_cursor": next_cursor}
    )


@bp.get("/runs/<uuid:run_id>/metrics/summary")
@project("metrics.read")
async def metrics_summary(run_id: UUID) -> Response:
    """Per name: last (value at the highest step), min, max, avg, count, first and last step."""
    limit = page_limit(1000, 1000)
    cursor = decode_cursor(1)
    after: Any = cursor[0] if cursor else None
    if after is not None and not isinstance(after, str):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    async with services().database.acquire() as conn:
        rows = await store.fetch_summaries(
            conn, run_ids=[run_id], after_name=after, limit=limit + 1
        )
    items = rows[:limit]
    return json_response(
        {
            "items": [domain.summary_json(r) for r in items],
            "next_cursor": encode_cursor([items[-1]["name"]]) if len(rows) > limit else None,
        }
    )
