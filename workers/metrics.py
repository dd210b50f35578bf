"""Job metrics: Prometheus counters in the worker process, mirrored into Redis for the api.

Each job counts ``enqueued``, ``succeeded``, ``failed`` and ``retried`` and its duration. The
worker serves them itself when ``ETP_WORKER_METRICS_PORT`` is set; the same totals go to a Redis
hash (``core.jobs.JOB_METRICS_KEY``) so the api's ``/metrics`` shows them for all workers.
A job may return ``"retried"`` or ``"failed"`` to report that outcome without raising (a
webhook attempt that failed and was rescheduled is a normal return).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from arq import Retry
from arq.typing import WorkerCoroutine
from prometheus_client import Counter, Histogram

from core.jobs import record_job_metric

log = logging.getLogger("etp.worker")

JOBS = Counter("etp_worker_jobs_total", "Worker jobs by outcome", ["job", "outcome"])
DURATION = Histogram(
    "etp_worker_job_duration_seconds",
    "Worker job duration",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800),
)

Job = Callable[..., Awaitable[Any]]


async def count(
    ctx: dict[str, Any], job: str, outcome: str, duration_s: float | None = None
) -> None:
    """Counts one outcome here and in the Redis mirror (Redis trouble is logged, not raised)."""
    JOBS.labels(job, outcome).inc()
    if duration_s is not None:
        DURATION.labels(job).observe(duration_s)
    try:
        await record_job_metric(ctx["redis"], job, outcome, duration_s)
    except Exception as exc:  # metrics must never fail a job
        log.warning("could not mirror a job metric", extra={"job": job, "error": str(exc)[:200]})


def instrumented(name: str, fn: Job) -> WorkerCoroutine:
    """``fn`` counted under ``name``: outcome and duration of every run."""

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await fn(ctx, *args, **kwargs)
            outcome = result if result in ("retried", "failed") else "succeeded"
            return result
        except Retry:
            outcome = "retried"
            raise
        finally:
            await count(ctx, name, outcome, time.perf_counter() - started)

    return cast(WorkerCoroutine, run)
