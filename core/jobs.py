"""The contract between callers and the arq worker: job names, job ids, worker settings, and
the job metrics mirrored into Redis.

Callers enqueue by these names and never import the worker. Every job is driven by a database
row and claims it with a compare-and-set, so job ids only need to make *concurrent* duplicates
impossible; a retry or a recovery after a crash uses a new id (the attempt or lease token is
part of it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol
from uuid import UUID

from core.errors import ConfigError
from core.redis_keys import PREFIX, arq_queue
from core.settings import Settings

DELIVER_WEBHOOK = "deliver_webhook"
RELAY_OUTBOX = "relay_outbox"
RUN_EXPORT = "run_export"
RUN_BACKFILL = "run_backfill"
SWEEP_SENSOR_STATUS = "sweep_sensor_status"
SWEEP_SCHEDULED_PROFILES = "sweep_scheduled_profiles"
SWEEP_STALLED_JOBS = "sweep_stalled_jobs"
SWEEP_RETENTION = "sweep_retention"

# What the job metrics count, per job name.
OUTCOMES = ("enqueued", "succeeded", "failed", "retried")
# Mirror of the worker's job counters, readable by the api (HINCRBY / HGETALL).
JOB_METRICS_KEY = f"{PREFIX}:worker:job-metrics"


def _generation(base: str, generation: int) -> str:
    return base if generation == 0 else f"{base}.{generation}"


def deliver_job_id(message_id: int, attempt: int, generation: int = 0) -> str:
    """``generation`` counts re-enqueues of the same attempt after its job went missing."""
    return _generation(f"deliver:{message_id}:{attempt}", generation)


def export_job_id(export_id: UUID | str, lease_token: int, restarts: int = 0) -> str:
    return _generation(f"export:{export_id}:{lease_token}", restarts)


def backfill_job_id(backfill_id: UUID | str, lease_token: int, restarts: int = 0) -> str:
    return _generation(f"backfill:{backfill_id}:{lease_token}", restarts)


def relay_job_id(now_s: float | None = None) -> str:
    """Notifications within the same 100 ms share one relay run; later ones get a fresh one."""
    return f"relay:{int((time.time() if now_s is None else now_s) * 10)}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Worker-side settings not (yet) in ``Settings``: read from the settings object when it
    has the field, else from ``ETP_<NAME>``, else the default below."""

    worker_queue: str = ""  # the arq queue; empty: ``core.redis_keys.arq_queue()``
    worker_max_jobs: int = 20
    worker_metrics_port: int = 0  # 0: no Prometheus endpoint in the worker
    worker_sweep_interval_s: int = 5  # relay, stalled-job and status sweeps (divides 60)
    relay_batch_size: int = 500
    relay_stale_s: float = 30.0  # a due message with no job for this long is re-enqueued
    webhook_timeout_s: float = 10.0
    webhook_retry_base_s: float = 5.0
    webhook_retry_max_delay_s: float = 4 * 3600.0
    webhook_retry_window_s: float = 24 * 3600.0
    webhook_secret_overlap_s: int = 24 * 3600
    webhook_retention_days: int = 30
    export_timeout_s: int = 3600
    export_retention_days: int = 7
    backfill_chunk_points: int = 50_000
    job_lease_s: float = 120.0  # a running export/backfill silent this long is restarted
    backfill_slice_s: float = 60.0
    backfill_max_attempts: int = 5
    backfill_preview_max_points: int = 2_000_000
    telemetry_retention_days: int = 0  # 0: keep telemetry outside capture sessions forever
    session_retention_days: int = 30

    @property
    def queue_name(self) -> str:
        return self.worker_queue or arq_queue()

    @property
    def webhook_lease_s(self) -> float:
        """How long a delivery may be in flight before a sweep presumes its worker dead."""
        return 2 * self.webhook_timeout_s + 5.0

    def replace(self, **changes: Any) -> WorkerConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return WorkerConfig(**values)


def worker_config(settings: Settings, env: Mapping[str, str] | None = None) -> WorkerConfig:
    """The worker settings for ``settings`` (see ``WorkerConfig``)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(WorkerConfig):
        kind: type = {"int": int, "float": float}.get(str(f.type), str)
        value = getattr(settings, f.name, None)
        if value is None:
            raw = env.get("ETP_" + f.name.upper(), "")
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"ETP_{f.name.upper()}={raw!r} is not a number") from None
        values[f.name] = kind(value)
    config = WorkerConfig(**values)
    if config.worker_sweep_interval_s < 1 or 60 % config.worker_sweep_interval_s:
        raise ConfigError("ETP_WORKER_SWEEP_INTERVAL_S must divide 60 (1, 2, 3, 5, 10, ...)")
    return config


# Job metrics mirrored into Redis ------------------------------------------------------------


class HashClient(Protocol):
    """What the metrics mirror needs of a Redis client (``redis.asyncio.Redis`` fits)."""

    def hincrby(self, name: str, key: str, amount: int = 1) -> Any: ...

    def hincrbyfloat(self, name: str, key: str, amount: float = 1.0) -> Any: ...

    def hgetall(self, name: str) -> Any: ...


async def record_job_metric(
    redis: HashClient, job: str, outcome: str, duration_s: float | None = None
) -> None:
    """Adds one ``outcome`` (and a duration) for ``job`` to the Redis mirror."""
    await redis.hincrby(JOB_METRICS_KEY, f"{job}|{outcome}", 1)
    if duration_s is not None:
        await redis.hincrbyfloat(JOB_METRICS_KEY, f"{job}|duration_s", duration_s)
        await redis.hincrby(JOB_METRICS_KEY, f"{job}|runs", 1)


@dataclass(frozen=True, slots=True)
class JobTotals:
    counts: dict[tuple[str, str], int]  # (job, outcome) -> count
    duration_s: dict[str, tuple[float, int]]  # job -> (sum of seconds, runs)


async def read_job_metrics(redis: HashClient) -> JobTotals:
    raw: dict[Any, Any] = await redis.hgetall(JOB_METRICS_KEY)
    counts: dict[tuple[str, str], int] = {}
    sums: dict[str, float] = {}
    runs: dict[str, int] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        text = value.decode() if isinstance(value, bytes) else str(value)
        job, _, field = name.partition("|")
        if field in OUTCOMES:
            counts[(job, field)] = int(text)
        elif field == "duration_s":
            sums[job] = float(text)
        elif field == "runs":
            runs[job] = int(text)
    return JobTotals(counts, {job: (sums[job], runs.get(job, 0)) for job in sums})
