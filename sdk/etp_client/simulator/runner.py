"""Runs simulated sensors against the ingest: one asyncio task per sensor on one
``httpx.AsyncClient``, with retries on 429/503/connection errors like a real device."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from etp_client.points import JSON_TYPE, encode_points
from etp_client.simulator.scenarios import PointSource, SimulationConfig
from etp_client.transport import (
    USER_AGENT,
    RetryPolicy,
    api_base,
    decode_json,
    is_retryable,
    parse_retry_after,
)

MAX_POINTS_PER_REQUEST = 10_000


@dataclass(frozen=True, slots=True)
class SimSensor:
    name: str
    token: str
    id: str | None = None


@dataclass
class SensorStats:
    name: str
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    errors_by_code: Counter[str] = field(default_factory=Counter)  # whole requests refused
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "rejected_by_code": dict(self.rejected_by_code),
            "errors_by_code": dict(self.errors_by_code),
            **latency_summary(self.latencies_ms),
        }


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {"latency_p50_ms": None, "latency_p95_ms": None}
    ordered = sorted(latencies_ms)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {"latency_p50_ms": round(statistics.median(ordered), 1), "latency_p95_ms": round(p95, 1)}


@dataclass
class SimulationResult:
    sensors: list[SensorStats]
    elapsed_s: float

    def totals(self) -> dict[str, Any]:
        codes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for s in self.sensors:
            codes.update(s.rejected_by_code)
            errors.update(s.errors_by_code)
        latencies = [x for s in self.sensors for x in s.latencies_ms]
        return {
            "sensors": len(self.sensors),
            "elapsed_s": round(self.elapsed_s, 2),
            "sent": sum(s.sent for s in self.sensors),
            "accepted": sum(s.accepted for s in self.sensors),
            "duplicates": sum(s.duplicates for s in self.sensors),
            "rejected": sum(s.rejected for s in self.sensors),
            "failed": sum(s.failed for s in self.sensors),
            "retries": sum(s.retries for s in self.sensors),
            "rejected_by_code": dict(codes),
            "errors_by_code": dict(errors),
            **latency_summary(latencies),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.totals(), "per_sensor": [s.as_dict() for s in self.sensors]}


async def _post(
    http: httpx.AsyncClient,
    sensor: SimSensor,
    points: list[dict[str, Any]],
    stats: SensorStats,
    retry: RetryPolicy,
) -> None:
    body = encode_points(points)
    headers = {"Authorization": f"Bearer {sensor.token}", "Content-Type": JSON_TYPE}
    attempt = 0
    stats.sent += len(points)
    while True:
        attempt += 1
        started = time.perf_counter()
        try:
            response = await http.post("/telemetry", content=body, headers=headers)
        except httpx.TransportError:
            if attempt >= retry.max_attempts:
                stats.failed += len(points)
                return
            stats.retries += 1
            await asyncio.sleep(retry.delay_s(attempt))
            continue
        if is_retryable(response) and attempt < retry.max_attempts:
            stats.retries += 1
            after = parse_retry_after(response.headers.get("Retry-After"))
            await asyncio.sleep(retry.delay_s(attempt, after))
            continue
        stats.requests += 1
        stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        answer = decode_json(response)
        answer = answer if isinstance(answer, dict) else {}
        if response.status_code == 202:
            rejected = answer.get("rejected") or []
            stats.accepted += int(answer.get("accepted", 0))
            stats.duplicates += int(answer.get("duplicates", 0))
        else:  # e.g. 422 "no point in the request is valid" lists every rejection
            details = (answer.get("error") or {}).get("details") or {}
            rejected = details.get("rejected") or []
            code = (answer.get("error") or {}).get("code", f"http_{response.status_code}")
            if not rejected:
                stats.failed += len(points)
                stats.errors_by_code[str(code)] += 1
        stats.rejected += len(rejected)
        for item in rejected:
            stats.rejected_by_code[str(item.get("code"))] += 1
        return


async def _run_sensor(
    http: httpx.AsyncClient,
    sensor: SimSensor,
    source: PointSource,
    config: SimulationConfig,
    stats: SensorStats,
    retry: RetryPolicy,
) -> None:
    while True:
        now = time.time()
        points = source.take(now)
        for start in range(0, len(points), MAX_POINTS_PER_REQUEST):
            await _post(http, sensor, points[start : start + MAX_POINTS_PER_REQUEST], stats, retry)
        if source.finished:
            return
        await asyncio.sleep(config.send_interval_s)


async def simulate(
    url: str,
    sensors: list[SimSensor],
    config: SimulationConfig,
    *,
    report: Callable[[SimulationResult], None] | None = None,
    report_every_s: float = 1.0,
    retry: RetryPolicy | None = None,
) -> SimulationResult:
    """Streams ``config.duration_s`` seconds of points from every sensor; ``report`` is
    called about every second with the running totals."""
    retry = retry or RetryPolicy(max_attempts=8)
    stats = [SensorStats(name=s.name) for s in sensors]
    started = time.time()
    result = SimulationResult(sensors=stats, elapsed_s=0.0)
    limits = httpx.Limits(max_connections=max(4, min(64, len(sensors))))
    async with httpx.AsyncClient(
        base_url=api_base(url), timeout=30.0, limits=limits, headers={"User-Agent": USER_AGENT}
    ) as http:
        tasks = [
            asyncio.create_task(
                _run_sensor(http, s, PointSource(config, i, started), config, st, retry),
                name=f"sim:{s.name}",
            )
            for i, (s, st) in enumerate(zip(sensors, stats, strict=True))
        ]
        try:
            while not all(t.done() for t in tasks):
                await asyncio.wait(tasks, timeout=report_every_s)
                result.elapsed_s = time.time() - started
                if report is not None:
                    report(result)
            for task in tasks:
                task.result()  # surface an unexpected error
        finally:
            for task in tasks:
                task.cancel()
    result.elapsed_s = time.time() - started
    return result
