"""``/projects/{pid}/webhooks`` and ``/webhooks/{wid}``: subscriptions, deliveries, pings.

Also the api's side of the job queue (``enqueue_job``, ``notify_relay``: the exports and
backfill routes use them too) and the mirror of the workers' job metrics on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, project_role
from api.pagination import decode_cursor, decode_time_cursor, page, page_limit
from api.policy import project, user
from api.responses import json_response
from api.state import services
from core import jobs
from core import webhooks as domain
from core.errors import InvalidInput, NotFound
from core.outbox import ALL_EVENTS, EVENT_TYPES, PING_EVENT
from core.ssrf import Allowlist
from core.stores import webhooks as store

log = logging.getLogger("etp.api")
bp = Blueprint("webhooks", __name__)

DELIVERY_STATUSES = ("succeeded", "failed", "retrying")
METRICS_REFRESH_S = 2.0


# The job queue, as the api sees it -----------------------------------------------------------


def _queue() -> ArqRedis | None:
    state = services()
    if state.redis is None:
        return None
    queue = state.extras.get("arq_queue")
    if queue is None:  # shares the api's Redis connection pool
        queue_name = jobs.worker_config(state.settings).queue_name
        queue = state.extras["arq_queue"] = ArqRedis(
            connection_pool=state.redis.connection_pool, default_queue_name=queue_name
        )
    return queue


async def enqueue_job(name: str, *, job_id: str, **kwargs: Any) -> bool:
    """Enqueues a worker job by name. Failure is logged, not raised: every job is driven by a
    committed row that the worker's sweeps pick up anyway."""
    queue = _queue()
    if queue is None:
        return False
    try:
        job = await queue.enqueue_job(name, _job_id=job_id, **kwargs)
        if job is not None:
            await jobs.record_job_metric(queue, name, "enqueued")
    except Exception as exc:
        log.warning("could not enqueue", extra={"job": name, "error": str(exc)[:200]})
        return False
    return job is not None


async def notify_relay() -> None:
    """Wakes the outbox relay after a commit that wrote events (the cron would, seconds later)."""
    await enqueue_job(jobs.RELAY_OUTBOX, job_id=jobs.relay_job_id())


class WorkerJobsMirror:
    """``etp_jobs_total`` / ``etp_job_duration_seconds`` of all workers, read from Redis by a
    background task (collection itself never waits on Redis)."""

    def __init__(self) -> None:
        self.totals = jobs.JobTotals({}, {})

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily(
            "etp_jobs", "Worker jobs by outcome, all workers", labels=["job", "outcome"]
        )
        for (job, outcome), value in sorted(self.totals.counts.items()):
            counts.add_metric([job, outcome], value)
        yield counts
        durations = SummaryMetricFamily(
            "etp_job_duration_seconds", "Worker job duration, all workers", labels=["job"]
        )
        for job, (total_s, runs) in sorted(self.totals.duration_s.items()):
            durations.add_metric([job], count_value=runs, sum_value=total_s)
        yield durations


MIRROR = WorkerJobsMirror()
REGISTRY.register(MIRROR)


async def _refresh_mirror() -> None:
    while True:
        redis = services().redis
        if redis is not None:
            try:
                MIRROR.totals = await jobs.read_job_metrics(redis)
            except Exception as exc:  # metrics are best effort
                log.debug("job metrics unavailable", extra={"error": str(exc)[:200]})
        await asyncio.sleep(METRICS_REFRESH_S)


@bp.before_app_serving
async def _start_mirror() -> None:
    services().extras["job_metrics_task"] = asyncio.create_task(_refresh_mirror())


@bp.after_app_serving
async def _stop_mirror() -> None:
    task = services().extras.pop("job_metrics_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Routes ---------------------------------------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=domain.URL_MAX)
    event_types: list[str] = Field(max_length=domain.EVENT_TYPES_MAX)
    is_active: bool = True
    description: str = Field(default="", max_length=domain.DESCRIPTION_MAX)


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=domain.URL_MAX)
    event_types: list[str] | None = Field(default=None, max_length=domain.EVENT_TYPES_MAX)
    is_active: bool | None = None
    description: str | None = Field(default=None, max_length=domain.DESCRIPTION_MAX)


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_s: int | None = None


def _allowlist() -> Allowlist:
    return Allowlist.parse(services().settings.webhook_allowlist)


def webhook_json(row: Any) -> dict[str, Any]:
    body = {
        k: row[k]
        for k in (
            "id",
            "project_id",
            "url",
            "is_active",
            "description",
            "created_by",
            "created_at",
            "updated_at",
        )
    }
    body["event_types"] = list(row["event_types"])
    body["secret_preview"] = domain.secret_preview(domain.open_secret(row["secret"]))
    body["previous_secret_expires_at"] = row["previous_secret_expires_at"]
    return body


def delivery_json(row: Any) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "message_id",
            "webhook_id",
            "event_type",
            "attempt",
            "status",
            "response_code",
            "latency_ms",
            "response_body",
            "error",
            "created_at",
        )
    }


@bp.get("/webhooks/event-types")
@user
async def list_event_types() -> Response:
    """The events a subscription can choose (``*`` for all, ``<area>.*`` for an area)."""
    return json_response(
        {"items": [*EVENT_TYPES, PING_EVENT], "wildcards": [ALL_EVENTS, "<area>.*"]}
    )


@bp.get("/projects/<uuid:project_id>/webhooks")
@project("webhook.read")
async def list_webhooks(project_id: UUID) -> Response:
    limit = page_limit()
    after = decode_time_cursor()
    async with services().database.acquire() as conn:
        rows = await store.list_subscriptions(
            conn, project_id=project_id, limit=limit + 1, after=after
        )
    return json_response(
        page(
            rows,
            limit,
            serialise=webhook_json,
            cursor_of=lambda r: (r["created_at"].isoformat(), str(r["id"])),
        )
    )


@bp.post("/projects/<uuid:project_id>/webhooks")
@project("webhook.manage")
@validate_request(WebhookIn)
async def create_webhook(project_id: UUID, data: WebhookIn) -> Response:
    """A subscription; its signing ``secret`` is in this response only."""
    async with services().database.acquire() as conn:
        row, secret = await domain.create_subscription(
            conn,
            project_id=project_id,
            role=project_role(),
            fields=data.model_dump(),
            allowlist=_allowlist(),
            audit=audit_context(),
        )
    return json_response({**webhook_json(row), "secret": secret}, status=201)


@bp.get("/webhooks/<uuid:webhook_id>")
@project("webhook.read")
async def get_webhook(webhook_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await store.fetch_subscription(conn, webhook_id=webhook_id)
    if row is None:
        raise NotFound("webhook not found")
    return json_response(webhook_json(row))


@bp.patch("/webhooks/<uuid:webhook_id>")
@project("webhook.manage")
@validate_request(WebhookPatch)
async def update_webhook(webhook_id: UUID, data: WebhookPatch) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.update_subscription(
            conn,
            webhook_id=webhook_id,
            role=project_role(),
            changes=data.model_dump(exclude_none=True),
            allowlist=_allowlist(),
            audit=audit_context(),
        )
    return json_response(webhook_json(row))


@bp.delete("/webhooks/<uuid:webhook_id>")
@project("webhook.manage")
async def delete_webhook(webhook_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        await domain.delete_subscription(
            conn, webhook_id=webhook_id, role=project_role(), audit=audit_context()
        )
    return Response(status=204)


@bp.get("/webhooks/<uuid:webhook_id>/deliveries")
@project("webhook.read")
async def list_deliveries(webhook_id: UUID) -> Response:
    """Every attempt (status, response code, latency, truncated response body), newest first."""
    limit = page_limit()
    cursor = decode_cursor(1)
    before = cursor[0] if cursor else None
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(DELIVERY_STATUSES)}", details={"field": "status"}
        )
    async with services().database.acquire() as conn:
        rows = await store.list_deliveries(
            conn, webhook_id=webhook_id, limit=limit + 1, before_id=before, status=status
        )
    return json_response(page(rows, limit, serialise=delivery_json, cursor_of=lambda r: [r["id"]]))


@bp.post("/webhooks/<uuid:webhook_id>/test")
@project("webhook.manage")
async def test_webhook(webhook_id: UUID) -> Response:
    """Sends a ``webhook.ping``; the attempt shows up in the deliveries."""
    async with services().database.acquire() as conn:
        message = await domain.create_ping(
            conn, webhook_id=webhook_id, role=project_role(), audit=audit_context()
        )
    await enqueue_job(
        jobs.DELIVER_WEBHOOK,
        job_id=jobs.deliver_job_id(message["id"], 1),
        message_id=message["id"],
        attempt=1,
    )
    return json_response(
        {"webhook_id": message["webhook_id"], "event_type": PING_EVENT, "status": "queued"},
        status=202,
    )


@bp.post("/webhooks/<uuid:webhook_id>/rotate-secret")
@project("webhook.manage")
@validate_request(RotateIn)
async def rotate_webhook_secret(webhook_id: UUID, data: RotateIn) -> Response:
    """A new secret (in this response only); the old one keeps signing for ``overlap_s``."""
    overlap_s = (
        data.overlap_s
        if data.overlap_s is not None
        else jobs.worker_config(services().settings).webhook_secret_overlap_s
    )
    async with services().database.acquire() as conn:
        row, secret = await domain.rotate_secret(
            conn,
            webhook_id=webhook_id,
            role=project_role(),
            overlap_s=overlap_s,
            audit=audit_context(),
        )
    return json_response({**webhook_json(row), "secret": secret})
