"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response

from actors import ray_health
from api.policy import public
from api.responses import json_response
from api.state import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
async def healthz() -> Response:
    """The process is up (no dependency is checked)."""
    return json_response({"status": "ok"})


async def _postgres() -> dict[str, Any]:
    db = services().db
    if db is None:
        return {"ok": False, "error": "pool not open"}
    try:
        async with db.acquire() as conn:
            row = await asyncio.wait_for(
                conn.fetchrow(
                    "SELECT current_setting('server_version') AS version, "
                    "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS tsdb"
                ),
                2.0,
            )
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return {"ok": False, "error": str(exc)[:200] or type(exc).__name__}
    assert row is not None
    return {"ok": True, "version": row["version"], "timescaledb": row["tsdb"]}


async def _redis() -> dict[str, Any]:
    client = services().redis
    if client is None:
        return {"ok": False, "error": "not connected"}
    try:
        await asyncio.wait_for(client.ping(), 2.0)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return {"ok": False, "error": str(exc)[:200] or type(exc).__name__}
    return {"ok": True}


@bp.get("/readyz")
@public
async def readyz() -> Response:
    """PostgreSQL (with TimescaleDB), Redis and Ray, each reported; 503 unless all are ok."""
    postgres, redis_state, ray_state = await asyncio.gather(_postgres(), _redis(), ray_health())
    checks = {"postgres": postgres, "redis": redis_state, "ray": ray_state}
    ready = all(check["ok"] for check in checks.values())
    return json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@bp.get("/metrics")
@public
async def metrics() -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
