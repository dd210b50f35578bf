"""Ray actor classes. ``ray.remote(...)`` is applied here and nowhere else.

- ``SensorActor``: one sensor (dedicated placement), named ``sensor:<id>``.
- ``SensorHostActor``: many sensors' writers in one process (``packed:<N>``), named
  ``sensor-host:<k>``; the same ``SensorWriter`` class does the work in both.
- ``CaptureSessionActor``: one running capture session, named ``session:<id>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from array import array
from typing import Any
from uuid import UUID

import ray
import redis.asyncio as aioredis

from actors.capture import CaptureSession
from actors.sensor import SensorWriter, SessionWindow, SharedConnection
from core.log import configure_logging
from core.settings import Settings

log = logging.getLogger("etp.actors")

# Named actors outlive the api process that created them (any api process may call them);
# idle ones exit by themselves. Ray restarts a crashed actor, which rebuilds from the database.
COMMON_OPTIONS: dict[str, Any] = {
    "lifetime": "detached",
    "max_restarts": -1,
    "max_task_retries": 0,
    "num_cpus": 0,
    "max_concurrency": 10_000,
}


def unpack_points(
    ts_us: bytes, values: bytes, metas: list[Any] | None
) -> tuple[list[int], list[float], list[Any]]:
    timestamps = array("q")
    timestamps.frombytes(ts_us)
    numbers = array("d")
    numbers.frombytes(values)
    return timestamps.tolist(), numbers.tolist(), metas or [None] * len(timestamps)


def _redis(settings: Settings) -> aioredis.Redis:
    return aioredis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)


class _SensorActor:
    def __init__(self, sensor_id: str, settings: Settings):
        configure_logging("sensor-actor", settings.log_level)
        self.settings = settings
        self.connection = SharedConnection(settings)
        self.redis = _redis(settings)
        self.writer = SensorWriter(
            UUID(sensor_id), settings, connection=self.connection, publish=self.redis.publish
        )
        self.reaper: asyncio.Task[None] | None = None

    def _watch_idle(self) -> None:
        if self.reaper is None or self.reaper.done():
            self.reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        idle_s = self.settings.actor_idle_s
        while True:
            await asyncio.sleep(max(0.5, min(idle_s / 4, 30.0)))
            if self.writer.idle_for() >= idle_s:
                handle = ray.get_runtime_context().current_actor
                handle.exit_if_idle.remote()
                return

    async def exit_if_idle(self) -> bool:
        if self.writer.idle_for() < self.settings.actor_idle_s:
            self._watch_idle()
            return False
        await self.connection.close()
        await self.redis.aclose()
        ray.actor.exit_actor()
        return True  # pragma: no cover (exit_actor does not return)

    async def ingest(self, ts_us: bytes, values: bytes, metas: list[Any] | None) -> dict[str, Any]:
        self._watch_idle()
        return await self.writer.ingest(*unpack_points(ts_us, values, metas))

    async def flush(self) -> dict[str, Any]:
        return await self.writer.flush()

    async def set_window(
        self, session_id: str, run_id: str, start_us: int, end_us: int | None
    ) -> None:
        self.writer.set_window(SessionWindow(UUID(session_id), UUID(run_id), start_us, end_us))

    async def reload_profiles(self) -> None:
        self.writer.invalidate_profiles()

    async def describe(self) -> dict[str, Any]:
        return self.writer.describe()

    async def pid(self) -> int:
        return os.getpid()


class _SensorHostActor:
    """Hosts many sensors' writers; one database connection shared by all of them."""

    def __init__(self, index: int, settings: Settings):
        configure_logging(f"sensor-host-{index}", settings.log_level)
        self.settings = settings
        self.connection = SharedConnection(settings)
        self.redis = _redis(settings)
        self.writers: dict[str, SensorWriter] = {}
        self.reaper: asyncio.Task[None] | None = None

    def _writer(self, sensor_id: str) -> SensorWriter:
        writer = self.writers.get(sensor_id)
        if writer is None:
            writer = SensorWriter(
                UUID(sensor_id),
                self.settings,
                connection=self.connection,
                publish=self.redis.publish,
            )
            self.writers[sensor_id] = writer
        if self.reaper is None or self.reaper.done():
            self.reaper = asyncio.create_task(self._reap())
        return writer

    async def _reap(self) -> None:
        idle_s = self.settings.actor_idle_s
        while self.writers:
            await asyncio.sleep(max(0.5, min(idle_s / 4, 30.0)))
            for sensor_id, writer in list(self.writers.items()):
                if writer.idle_for() >= idle_s:
                    del self.writers[sensor_id]

    async def ingest(
        self, sensor_id: str, ts_us: bytes, values: bytes, metas: list[Any] | None
    ) -> dict[str, Any]:
        return await self._writer(sensor_id).ingest(*unpack_points(ts_us, values, metas))

    async def flush(self, sensor_id: str) -> dict[str, Any]:
        writer = self.writers.get(sensor_id)
        return await writer.flush() if writer else {"ok": True, "sensor_id": sensor_id}

    async def set_window(
        self, sensor_id: str, session_id: str, run_id: str, start_us: int, end_us: int | None
    ) -> None:
        self._writer(sensor_id).set_window(
            SessionWindow(UUID(session_id), UUID(run_id), start_us, end_us)
        )

    async def reload_profiles(self, sensor_id: str) -> None:
        writer = self.writers.get(sensor_id)
        if writer is not None:
            writer.invalidate_profiles()

    async def pid(self) -> int:
        return os.getpid()

    async def describe(self) -> dict[str, Any]:
        return {
            "sensors": len(self.writers),
            "pending_points": sum(w.pending_points for w in self.writers.values()),
        }


class _CaptureSessionActor:
    def __init__(self, session_id: str, settings: Settings):
        configure_logging("session-actor", settings.log_level)
        self.session = CaptureSession(UUID(session_id), settings)

    async def start(self) -> dict[str, Any]:
        return await self.session.start()

    async def stop(self) -> dict[str, Any]:
        result = await self.session.stop()
        return result

    async def exit(self) -> None:
        await self.session.close()
        ray.actor.exit_actor()

    async def describe(self) -> dict[str, Any]:
        return self.session.describe()


SensorActor = ray.remote(**COMMON_OPTIONS)(_SensorActor)
SensorHostActor = ray.remote(**COMMON_OPTIONS)(_SensorHostActor)
CaptureSessionActor = ray.remote(**{**COMMON_OPTIONS, "max_restarts": 3})(_CaptureSessionActor)
