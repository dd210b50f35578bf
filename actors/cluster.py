"""Connecting a process to the Ray cluster the settings name."""

from __future__ import annotations

import asyncio
import logging

import ray

from core.errors import Unavailable
from core.settings import Settings

log = logging.getLogger("etp.actors")


def connect_ray(settings: Settings) -> None:
    """Joins the configured cluster (an empty address starts a local one); idempotent."""
    if ray.is_initialized():
        return
    try:
        ray.init(
            address=settings.ray_address or "local",
            namespace=settings.ray_namespace,
            include_dashboard=False,
            log_to_driver=True,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError) as exc:
        raise Unavailable(
            f"cannot join the Ray cluster at {settings.ray_address!r}: {exc}"
        ) from exc
    log.info("connected to ray", extra={"ray_address": settings.ray_address or "local"})


def disconnect_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


async def ray_health(timeout_s: float = 2.0) -> dict[str, object]:
    """Whether this process is connected to a live cluster, and how many nodes are alive."""
    if not ray.is_initialized():
        return {"ok": False, "error": "not connected"}
    try:
        nodes = await asyncio.wait_for(asyncio.to_thread(ray.nodes), timeout_s)
    except Exception as exc:  # any failure means "not healthy"; the reason is reported
        return {"ok": False, "error": str(exc)[:200]}
    alive = sum(1 for node in nodes if node.get("Alive"))
    return {"ok": alive > 0, "nodes_alive": alive}
