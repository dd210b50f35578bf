"""Reaching sensor and capture-session actors by name from any process (get-or-create).

Handles are cached per process. A call to an actor that died is retried once on a fresh
handle: writes are idempotent (points are unique by sensor and timestamp), so a retry after a
crash that happened past the commit stores nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from array import array
from typing import Any
from uuid import UUID

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayTaskError,
)

from core.errors import RateLimited, Unavailable
from core.settings import Settings

log = logging.getLogger("etp.actors")
_DEAD = (RayActorError, ActorDiedError, ActorUnavailableError)


def sensor_actor_name(sensor_id: UUID | str) -> str:
    return f"sensor:{sensor_id}"


def sensor_host_name(index: int, settings: Settings) -> str:
    # Host actors are long-lived and hold settings; the database they write to is part of
    # their identity, so two deployments (or test databases) never share one by accident.
    scope = hashlib.sha256(settings.database_url.encode()).hexdigest()[:8]
    return f"sensor-host:{scope}:{index}"


def session_actor_name(session_id: UUID | str) -> str:
    return f"session:{session_id}"


def host_index(sensor_id: UUID | str, hosts: int) -> int:
    """Stable routing of a sensor to a host actor (the same in every process)."""
    return zlib.crc32(str(sensor_id).encode()) % hosts


def pack_points(
    ts_us: list[int], values: list[float], metas: list[Any]
) -> tuple[bytes, bytes, list[Any] | None]:
    has_meta = any(meta is not None for meta in metas)
    return array("q", ts_us).tobytes(), array("d", values).tobytes(), metas if has_meta else None


def actor_options(settings: Settings, name: str) -> dict[str, Any]:
    """Named get-or-create options, pinned to actor nodes when a resource is configured."""
    options: dict[str, Any] = {
        "name": name,
        "namespace": settings.ray_namespace,
        "get_if_exists": True,
    }
    if settings.actor_resource:
        options["resources"] = {settings.actor_resource: 1}
    return options


class SensorGateway:
    """The api's and workers' way to the sensor actors, for either placement."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.hosts = settings.packed_hosts
        self.handles: dict[str, Any] = {}

    def _create(self, name: str, key: str) -> Any:
        from actors.remote import SensorActor, SensorHostActor

        options = actor_options(self.settings, name)
        if self.hosts:
            return SensorHostActor.options(**options).remote(int(key), self.settings)
        return SensorActor.options(**options).remote(key, self.settings)

    async def _handle(self, sensor_id: str) -> tuple[str, Any]:
        if self.hosts:
            key = str(host_index(sensor_id, self.hosts))
            name = sensor_host_name(int(key), self.settings)
        else:
            key, name = sensor_id, sensor_actor_name(sensor_id)
        handle = self.handles.get(name)
        if handle is None:
            # Creating/looking up a named actor is a blocking GCS call: keep it off the loop.
            handle = await asyncio.to_thread(self._create, name, key)
            self.handles[name] = handle
        return name, handle

    async def _call(self, sensor_id: UUID | str, method: str, *args: Any) -> Any:
        sensor = str(sensor_id)
        full_args = (sensor, *args) if self.hosts else args
        for attempt in (1, 2):
            name, handle = await self._handle(sensor)
            try:
                ref = getattr(handle, method).remote(*full_args)
                return await asyncio.wait_for(ref, self.settings.actor_call_timeout_s)
            except _DEAD as exc:
                self.handles.pop(name, None)
                if attempt == 2:
                    raise Unavailable(
                        "the sensor's writer restarted; retry",
                        retry_after_s=1.0,
                        details={"reason": type(exc).__name__},
                    ) from exc
                log.warning("sensor actor died; retrying once", extra={"sensor_id": sensor})
            except (TimeoutError, GetTimeoutError) as exc:
                raise Unavailable(
                    "the sensor's writer did not answer in time; retry", retry_after_s=2.0
                ) from exc
        raise AssertionError("unreachable")

    async def ingest(
        self, sensor_id: UUID | str, ts_us: list[int], values: list[float], metas: list[Any]
    ) -> dict[str, Any]:
        """Commits the points; returns ``{accepted, duplicates}`` or raises a domain error."""
        result: dict[str, Any] = await self._call(
            sensor_id, "ingest", *pack_points(ts_us, values, metas)
        )
        if not result.get("ok"):
            if result.get("code") == "rate_limited":
                raise RateLimited(result["message"], retry_after_s=result["retry_after_s"])
            raise Unavailable(
                result.get("message", "the write failed; retry"),
                retry_after_s=float(result.get("retry_after_s", 1.0)),
            )
        return result

    async def flush(self, sensor_id: UUID | str) -> None:
        await self._call(sensor_id, "flush")

    async def set_window(
        self,
        sensor_id: UUID | str,
        session_id: UUID,
        run_id: UUID,
        start_us: int,
        end_us: int | None,
    ) -> None:
        await self._call(sensor_id, "set_window", str(session_id), str(run_id), start_us, end_us)

    async def reload_profiles(self, sensor_id: UUID | str) -> None:
        """Tells a live writer to reload its profiles (no actor is created for this)."""
        name = (
            sensor_host_name(host_index(sensor_id, self.hosts), self.settings)
            if self.hosts
            else sensor_actor_name(sensor_id)
        )
        try:
            handle = await asyncio.to_thread(
                ray.get_actor, name, namespace=self.settings.ray_namespace
            )
        except ValueError:
            return  # not running: it loads fresh profiles when it starts
        args = (str(sensor_id),) if self.hosts else ()
        try:
            await asyncio.wait_for(handle.reload_profiles.remote(*args), 5.0)
        except (*_DEAD, TimeoutError):
            pass  # the writer refreshes its profiles by itself within seconds anyway


async def _session_handle(settings: Settings, session_id: UUID | str) -> Any:
    from actors.remote import CaptureSessionActor

    def create() -> Any:
        return CaptureSessionActor.options(
            **actor_options(settings, session_actor_name(session_id))
        ).remote(str(session_id), settings)

    return await asyncio.to_thread(create)


async def start_capture(settings: Settings, session_id: UUID | str) -> dict[str, Any]:
    """Creates the session's actor and announces the window to the run's sensors."""
    handle = await _session_handle(settings, session_id)
    try:
        result: dict[str, Any] = await asyncio.wait_for(handle.start.remote(), 30.0)
    except (*_DEAD, TimeoutError, RayTaskError) as exc:
        raise Unavailable("the capture session could not reach its sensors; retry") from exc
    return result


async def stop_capture(settings: Settings, session_id: UUID | str) -> dict[str, Any]:
    """The stop barrier and the summary; the session's actor exits afterwards.

    A session whose actor is gone (restart, node loss) gets a fresh one: everything it needs
    is in the database.
    """
    for attempt in (1, 2):
        handle = await _session_handle(settings, session_id)
        try:
            summary: dict[str, Any] = await asyncio.wait_for(handle.stop.remote(), 120.0)
            break
        except _DEAD as exc:
            if attempt == 2:
                raise Unavailable("the capture session's actor died while stopping") from exc
        except TimeoutError as exc:
            raise Unavailable("the capture session's sensors did not flush in time") from exc
        except RayTaskError as exc:
            log.error(
                "capture stop failed",
                extra={"session_id": str(session_id), "error": str(exc)[:500]},
            )
            raise Unavailable("the capture session's stop failed; see the server log") from exc
    handle.exit.remote()
    return summary
