"""Enqueuing from inside the worker (follow-up jobs), counted as ``enqueued``."""

from __future__ import annotations

import logging
from typing import Any

from workers.metrics import count

log = logging.getLogger("etp.worker")


async def enqueue(
    ctx: dict[str, Any], name: str, *, job_id: str, defer_s: float | None = None, **kwargs: Any
) -> bool:
    """Enqueues ``name``; False when a job with ``job_id`` is already queued or running, or
    Redis failed (logged: the database row stays due and a sweep enqueues it again)."""
    try:
        job = await ctx["redis"].enqueue_job(name, _job_id=job_id, _defer_by=defer_s, **kwargs)
    except Exception as exc:
        log.warning("could not enqueue", extra={"job": name, "job_id": job_id, "error": str(exc)})
        return False
    if job is None:
        return False
    await count(ctx, name, "enqueued")
    return True
