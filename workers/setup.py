"""The worker's functions, crons and lifespan, built from explicit settings.

``workers.main.WorkerSettings`` (what ``arq`` runs) reads the environment once and uses
``worker_options``; tests build a ``Worker`` with their own settings through ``build_worker``.
Resources live in ``ctx`` (arq's convention): ``settings``, ``config``, ``db``, ``http`` (the
SSRF-guarded webhook client), ``store`` (artifacts), ``gateway`` (sensor writers, when a Ray
cluster is configured) and arq's own ``redis``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Worker, cron
from arq.connections import RedisSettings
from arq.worker import func
from prometheus_client import start_http_server

from core import jobs
from core.artifact_store import artifact_store
from core.db import create_pool
from core.log import configure_logging
from core.settings import Settings
from core.ssrf import Allowlist, GuardedHttpClient
from workers.backfill import run_backfill
from workers.exports import run_export
from workers.metrics import instrumented
from workers.sweeps import (
    sweep_retention,
    sweep_scheduled_profiles,
    sweep_sensor_status,
    sweep_stalled_jobs,
)
from workers.webhooks import deliver_webhook, relay_outbox

log = logging.getLogger("etp.worker")

Ctx = dict[str, Any]


async def ping(ctx: Ctx) -> str:
    """A no-op job used by readiness checks and tests."""
    return "pong"


def _connect_gateway(settings: Settings) -> Any:
    """Sensor writers are told to reload profiles only when a Ray cluster is configured; a
    worker never starts a Ray instance of its own."""
    if not settings.ray_address:
        return None
    from actors import SensorGateway, connect_ray

    try:
        connect_ray(settings)
    except Exception as exc:  # the worker's jobs do not need Ray; writers refresh by themselves
        log.warning(
            "no Ray connection; profile reloads are left to the writers",
            extra={"error": str(exc)[:200]},
        )
        return None
    return SensorGateway(settings)


def lifespan(
    settings: Settings, config: jobs.WorkerConfig, *, standalone: bool
) -> tuple[Callable[[Ctx], Awaitable[None]], Callable[[Ctx], Awaitable[None]]]:
    """Startup and shutdown hooks; ``standalone`` (the worker process, not a test) also sets up
    JSON logging, the metrics endpoint and the Ray connection."""

    async def on_startup(ctx: Ctx) -> None:
        if standalone:
            configure_logging("worker", settings.log_level)
            arq_log = logging.getLogger("arq")  # arq's CLI gave it a plain-text handler
            arq_log.handlers.clear()
            arq_log.setLevel(logging.NOTSET)
            if config.worker_metrics_port:
                start_http_server(config.worker_metrics_port)
        ctx["settings"] = settings
        ctx["config"] = config
        ctx["db"] = await create_pool(settings, min_size=1, max_size=config.worker_max_jobs + 2)
        ctx["http"] = GuardedHttpClient(Allowlist.parse(settings.webhook_allowlist))
        ctx["store"] = artifact_store(settings)
        ctx["gateway"] = _connect_gateway(settings) if standalone else None
        log.info("worker started", extra={"max_jobs": config.worker_max_jobs})

    async def on_shutdown(ctx: Ctx) -> None:
        if ctx.get("http") is not None:
            await ctx["http"].aclose()
        if ctx.get("db") is not None:
            await ctx["db"].close()

    return on_startup, on_shutdown


def _every(interval_s: int) -> set[int]:
    return set(range(0, 60, interval_s))


def worker_options(
    settings: Settings, config: jobs.WorkerConfig, *, standalone: bool = False
) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``."""
    on_startup, on_shutdown = lifespan(settings, config, standalone=standalone)
    short = 300
    functions = [
        func(
            instrumented(jobs.DELIVER_WEBHOOK, deliver_webhook),
            name=jobs.DELIVER_WEBHOOK,
            timeout=config.webhook_timeout_s + 30,
            max_tries=1,
            keep_result=0,
        ),
        func(
            instrumented(jobs.RELAY_OUTBOX, relay_outbox),
            name=jobs.RELAY_OUTBOX,
            timeout=short,
            max_tries=1,
            keep_result=0,
        ),
        func(
            instrumented(jobs.RUN_EXPORT, run_export),
            name=jobs.RUN_EXPORT,
            timeout=config.export_timeout_s,
            max_tries=1,
        ),
        func(
            instrumented(jobs.RUN_BACKFILL, run_backfill),
            name=jobs.RUN_BACKFILL,
            timeout=config.backfill_slice_s + 600,  # a slice ends after its last chunk
            max_tries=1,
        ),
        func(ping, name="ping"),
    ]
    sweep = _every(config.worker_sweep_interval_s)
    crons = [
        cron(
            instrumented(jobs.RELAY_OUTBOX, relay_outbox),
            name=f"cron:{jobs.RELAY_OUTBOX}",
            second=sweep,
            timeout=short,
        ),
        cron(
            instrumented(jobs.SWEEP_STALLED_JOBS, sweep_stalled_jobs),
            name=f"cron:{jobs.SWEEP_STALLED_JOBS}",
            second=sweep,
            timeout=short,
        ),
        cron(
            instrumented(jobs.SWEEP_SENSOR_STATUS, sweep_sensor_status),
            name=f"cron:{jobs.SWEEP_SENSOR_STATUS}",
            second=sweep,
            timeout=short,
        ),
        cron(
            instrumented(jobs.SWEEP_SCHEDULED_PROFILES, sweep_scheduled_profiles),
            name=f"cron:{jobs.SWEEP_SCHEDULED_PROFILES}",
            second=sweep,
            timeout=short,
        ),
        cron(
            instrumented(jobs.SWEEP_RETENTION, sweep_retention),
            name=f"cron:{jobs.SWEEP_RETENTION}",
            minute=17,
            second=0,
            timeout=1800,
        ),
    ]
    return {
        "functions": functions,
        "cron_jobs": crons,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "queue_name": config.queue_name,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_jobs": config.worker_max_jobs,
        "job_timeout": 600,
        "keep_result": 60,
        "health_check_interval": 30,
    }


def build_worker(
    settings: Settings, config: jobs.WorkerConfig | None = None, **overrides: Any
) -> Worker:
    """An in-process worker for ``settings`` (tests: ``burst=True`` or
    ``handle_signals=False``); no Ray connection, logging left as it is."""
    options = worker_options(settings, config or jobs.worker_config(settings))
    return Worker(**{**options, **overrides})
