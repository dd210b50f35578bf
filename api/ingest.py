"""``POST /telemetry``: sensors send points with their token; 202 only after the commit."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram
from quart import Blueprint, Response, request

from actors import SensorGateway
from api.policy import sensor
from api.responses import json_response
from api.security import bearer_token
from api.state import services
from core.errors import AppError, InvalidInput, PayloadTooLarge, RateLimited, Unauthenticated
from core.redis_keys import rate_limit_prefix
from core.sensors import SensorIdentity, SensorTokenCache, resolve_sensor_token_cached
from core.stores.ingest_errors import insert_ingest_errors
from core.telemetry_input import (
    Limits,
    ParsedBatch,
    decode_body,
    parse_json_points,
    parse_line_points,
)
from core.token_bucket import TokenBucket

log = logging.getLogger("etp.ingest")
bp = Blueprint("ingest", __name__)

POINTS = Counter("etp_ingest_points_total", "Points received by ingest", ["outcome"])
REJECTIONS = Counter("etp_ingest_rejections_total", "Points rejected by ingest", ["code"])
BATCH_SIZE = Histogram(
    "etp_ingest_batch_points",
    "Points per ingest request",
    buckets=(1, 10, 25, 100, 250, 1000, 2500, 10000),
)


def sensor_gateway() -> SensorGateway:
    extras = services().extras
    gateway = extras.get("sensor_gateway")
    if gateway is None:
        gateway = extras["sensor_gateway"] = SensorGateway(services().settings)
    return gateway


def token_cache() -> SensorTokenCache:
    extras = services().extras
    cache = extras.get("sensor_token_cache")
    if cache is None:
        cache = extras["sensor_token_cache"] = SensorTokenCache()
    return cache


async def _identify() -> SensorIdentity:
    token = bearer_token()
    if token is None:
        raise Unauthenticated("send the sensor token as 'Authorization: Bearer <token>'")
    identity = await resolve_sensor_token_cached(services().database, token_cache(), token)
    if identity is None:
        raise Unauthenticated("the sensor token is invalid, rotated out or deleted")
    return identity


async def _charge(identity: SensorIdentity, points: int) -> dict[str, str]:
    """Takes ``points`` tokens from the sensor's bucket; 429 when it is empty."""
    state = services()
    rate, burst = identity.rate_limit(state.settings)
    headers = {"RateLimit-Limit": str(burst)}
    if state.redis is None:
        return headers
    bucket = state.extras.get("ingest_bucket")
    if bucket is None:
        bucket = state.extras["ingest_bucket"] = TokenBucket(
            state.redis, f"{rate_limit_prefix()}:sensor"
        )
    try:
        result = await bucket.take(
            str(identity.sensor_id), cost=min(points, burst), rate_per_s=rate, burst=burst
        )
    except Exception as exc:  # Redis down: ingest goes on without the limit (logged)
        log.warning("rate limit unavailable", extra={"error": str(exc)[:200]})
        return headers
    headers["RateLimit-Remaining"] = str(result.remaining)
    if not result.allowed:
        POINTS.labels("rate_limited").inc(points)
        raise RateLimited(
            f"this sensor may send {rate:g} points/s (burst {burst})",
            retry_after_s=max(result.wait_s, 1.0),
            details={"rate_points_per_s": rate, "burst_points": burst},
        )
    return headers


async def _journal(
    identity: SensorIdentity, batch: ParsedBatch | None, error: AppError | None = None
) -> None:
    entries: list[tuple[str, str, int | None, str | None]] = []
    if batch is not None:
        entries = [(r.code, r.message, r.index, r.sample) for r in batch.rejected]
    if error is not None:
        entries.append((error.code, error.message, None, None))
    if not entries:
        return
    try:
        async with services().database.acquire() as conn:
            await insert_ingest_errors(conn, sensor_id=identity.sensor_id, errors=entries)
    except Exception as exc:  # the journal is best effort; the answer tells the client anyway
        log.warning("could not journal ingest errors", extra={"error": str(exc)[:200]})


def _parse(settings: Any, body: bytes) -> ParsedBatch:
    limits = Limits(
        settings.ingest_max_points,
        settings.ingest_max_bytes,
        settings.ingest_max_past_s,
        settings.ingest_max_future_s,
    )
    now_us = time.time_ns() // 1_000
    content_type = (request.mimetype or "application/json").lower()
    if content_type in ("application/json", ""):
        return parse_json_points(body, now_us=now_us, limits=limits)
    if content_type == "text/plain":
        return parse_line_points(
            body, precision=request.args.get("precision", "ns"), now_us=now_us, limits=limits
        )
    raise AppError(
        f"Content-Type {content_type!r} is not accepted; send application/json or "
        "text/plain (InfluxDB line protocol)",
        code="unsupported_media_type",
    )


@bp.post("/telemetry")
@sensor
async def ingest() -> Response:
    """Stores a batch; answers 202 with accepted/rejected counts only after the commit."""
    identity = await _identify()
    settings = services().settings
    length = request.content_length
    if length is not None and length > settings.ingest_max_bytes:
        raise PayloadTooLarge(f"the body is larger than {settings.ingest_max_bytes} bytes")
    raw = await request.get_data(cache=False)
    assert isinstance(raw, bytes)
    try:
        if len(raw) > settings.ingest_max_bytes:
            raise PayloadTooLarge(f"the body is larger than {settings.ingest_max_bytes} bytes")
        body = decode_body(raw, request.headers.get("Content-Encoding"), settings.ingest_max_bytes)
        batch = _parse(settings, body)
    except AppError as exc:
        await _journal(identity, None, exc)
        raise
    BATCH_SIZE.observe(batch.total)
    for rejection in batch.rejected:
        REJECTIONS.labels(rejection.code).inc()
    rejected = [r.as_json() for r in batch.rejected]
    if not batch.ts_us:
        await _journal(identity, batch)
        raise InvalidInput(
            "no point in the request is valid", details={"accepted": 0, "rejected": rejected}
        )
    headers = await _charge(identity, len(batch.ts_us))
    try:
        result = await sensor_gateway().ingest(
            identity.sensor_id, batch.ts_us, batch.values, batch.metas
        )
    finally:
        await _journal(identity, batch)
    POINTS.labels("accepted").inc(result["accepted"])
    return json_response(
        {"accepted": result["accepted"], "duplicates": result["duplicates"], "rejected": rejected},
        status=202,
        headers=headers,
    )
