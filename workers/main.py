"""``arq workers.main.WorkerSettings``: the worker process's settings and lifespan."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings

from core.db import create_pool
from core.log import configure_logging
from core.redis_keys import arq_queue
from core.settings import load_settings

settings = load_settings()


async def on_startup(ctx: dict[str, Any]) -> None:
    configure_logging("worker", settings.log_level)
    ctx["settings"] = settings
    ctx["db"] = await create_pool(settings, min_size=1, max_size=4)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    db = ctx.get("db")
    if db is not None:
        await db.close()


async def ping(ctx: dict[str, Any]) -> str:
    """A no-op job used by readiness checks and tests."""
    return "pong"


class WorkerSettings:
    functions: list[Any] = [ping]
    cron_jobs: list[Any] = []
    on_startup = on_startup
    on_shutdown = on_shutdown
    queue_name = arq_queue()
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    max_jobs = 20
    job_timeout = 600
    health_check_interval = 30
