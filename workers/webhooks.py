"""The outbox relay and webhook delivery.

``relay_outbox`` (a cron every few seconds, and enqueued by the api after it writes events)
fans outbox rows out into ``webhook_messages`` and enqueues the first attempt of each. It also
re-enqueues messages whose job went missing (Redis lost it, or the worker died before or during
the attempt), so a committed event is always delivered eventually.

``deliver_webhook`` makes one attempt, records it, and schedules the next with backoff.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

from arq.jobs import Job, JobStatus

from core import jobs
from core.outbox import PING_EVENT, event_matches
from core.ssrf import DeliveryFailed, UrlRefused
from core.stores import webhooks as store
from core.webhooks import (
    event_body,
    new_webhook_id,
    next_retry_delay_s,
    signature_header,
    signing_secrets,
)
from workers.queue import enqueue

log = logging.getLogger("etp.worker.webhooks")

USER_AGENT = "ETP-Webhooks/1"
RESPONSE_BODY_MAX = 2000
MAX_BATCHES_PER_RUN = 20
RECOVERY_LIMIT = 2000


async def _enqueue_attempt(
    ctx: dict[str, Any],
    message_id: int,
    attempt: int,
    generation: int,
    defer_s: float | None = None,
) -> None:
    await enqueue(
        ctx,
        jobs.DELIVER_WEBHOOK,
        job_id=jobs.deliver_job_id(message_id, attempt, generation),
        defer_s=defer_s,
        message_id=message_id,
        attempt=attempt,
    )


async def _enqueue_due(ctx: dict[str, Any], message: Any) -> bool:
    """Enqueues a due message's next attempt unless its job is still waiting in the queue. A job
    that is gone, or marked in progress although the message was never claimed (its worker died
    first: arq keeps that mark for an hour), is replaced under a new job id."""
    attempt, generation = message["attempts"] + 1, message["enqueue_gen"]
    job_id = jobs.deliver_job_id(message["id"], attempt, generation)
    status = await Job(job_id, ctx["redis"], _queue_name=ctx["config"].queue_name).status()
    if status in (JobStatus.queued, JobStatus.deferred):
        return False
    if status != JobStatus.not_found:
        async with ctx["db"].acquire() as conn:
            generation = await store.next_enqueue_gen(conn, message_id=message["id"])
    await _enqueue_attempt(ctx, message["id"], attempt, generation)
    return True


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Fans pending events out to subscriptions and enqueues due deliveries; the event count."""
    config: jobs.WorkerConfig = ctx["config"]
    relayed = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        async with ctx["db"].transaction() as conn:
            events = await store.lock_pending_events(conn, limit=config.relay_batch_size)
            if not events:
                break
            project_ids = {e["project_id"] for e in events if e["project_id"] is not None}
            by_project: dict[Any, list[Any]] = defaultdict(list)
            for sub in await store.list_active_subscriptions(conn, project_ids=list(project_ids)):
                by_project[sub["project_id"]].append(sub)
            messages = []
            for event in events:
                body: str | None = None
                for sub in by_project.get(event["project_id"], []):
                    if event_matches(sub["event_types"], event["event_type"]):
                        body = body or event_body(
                            event["event_type"], event["payload"], event["created_at"]
                        )
                        messages.append(
                            (event["id"], sub["id"], new_webhook_id(), event["event_type"], body)
                        )
            created = await store.insert_messages(conn, messages)
            await store.mark_events_done(conn, event_ids=[e["id"] for e in events])
        for message in created:
            await _enqueue_attempt(ctx, message["id"], 1, message["enqueue_gen"])
        relayed += len(events)
        if len(events) < config.relay_batch_size:
            break
    async with ctx["db"].acquire() as conn:
        lost = await store.reclaim_lost_attempts(conn, limit=RECOVERY_LIMIT)
        due = await store.claim_due_messages(
            conn, stale_s=config.relay_stale_s, limit=RECOVERY_LIMIT
        )
    for message in lost:
        await _enqueue_attempt(ctx, message["id"], message["attempts"] + 1, message["enqueue_gen"])
    requeued = [m for m in due if await _enqueue_due(ctx, m)]
    if lost or requeued:
        log.info("re-enqueued deliveries", extra={"lost": len(lost), "due": len(requeued)})
    return relayed


def _failure_text(status_code: int, location: str | None) -> str:
    if 300 <= status_code < 400:
        return f"HTTP {status_code}: redirect not followed (Location: {(location or '')[:300]})"
    return f"HTTP {status_code}"


async def deliver_webhook(ctx: dict[str, Any], *, message_id: int, attempt: int) -> str:
    """One delivery attempt of a message; a stale or duplicate job does nothing."""
    config: jobs.WorkerConfig = ctx["config"]
    async with ctx["db"].acquire() as conn:
        message = await store.claim_message(
            conn, message_id=message_id, attempt=attempt, lease_s=config.webhook_lease_s
        )
    if message is None:
        return "skipped"
    code: int | None = None
    latency_ms: float | None = None
    response_body: str | None = None
    error: str | None = None
    retryable = True
    if not message["is_active"] and message["event_type"] != PING_EVENT:
        error, retryable = "the subscription is disabled", False
    else:
        body = message["body"].encode()
        timestamp = int(time.time())
        signature = signature_header(
            signing_secrets(message, message["now"]), message["webhook_id"], timestamp, body
        )
        headers = [
            ("content-type", "application/json"),
            ("user-agent", USER_AGENT),
            ("webhook-id", message["webhook_id"]),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", signature),
        ]
        try:
            result = await ctx["http"].post(message["url"], body, headers, config.webhook_timeout_s)
        except UrlRefused as exc:
            error, retryable = f"refused: {exc}", False
        except DeliveryFailed as exc:
            error = str(exc)
        else:
            code, latency_ms = result.status_code, result.latency_ms
            response_body = result.body[:RESPONSE_BODY_MAX]
            if not 200 <= code < 300:
                error = _failure_text(code, result.location)
    retry_in_s = None
    if error is None:
        status = "succeeded"
    else:
        if retryable:
            retry_in_s = next_retry_delay_s(attempt, message["created_at"], message["now"], config)
        status = "retrying" if retry_in_s is not None else "failed"
    async with ctx["db"].transaction() as conn:
        kept = await store.finish_attempt(
            conn,
            message=message,
            status=status,
            response_code=code,
            latency_ms=latency_ms,
            response_body=response_body,
            error=error,
            retry_in_s=retry_in_s,
        )
    log.info(
        "webhook attempt",
        extra={
            "webhook_id": message["webhook_id"],
            "subscription_id": str(message["subscription_id"]),
            "attempt": attempt,
            "status": status,
            "response_code": code,
            "error": error,
        },
    )
    if retry_in_s is not None and kept:
        await _enqueue_attempt(ctx, message_id, attempt + 1, message["enqueue_gen"], retry_in_s)
    return {"succeeded": "succeeded", "retrying": "retried"}.get(status, "failed")
