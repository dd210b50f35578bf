"""The sensor writer: converts, tags, buffers and group-commits one sensor's telemetry.

A plain async class (testable without Ray); ``actors/remote.py`` hosts it in a Ray actor, one
per sensor (dedicated placement) or many per host actor (packed placement).

Group commit: a request's points join the buffer and its future resolves only after the
transaction holding them commits. A flush starts at once when none is running (after an optional
commit delay, ``flush_interval_ms``); requests arriving while a flush runs share the next one,
which takes at most ``flush_max_points`` points. Conversion and capture-session tagging happen
at flush time, with profiles and session windows refreshed from the database when stale.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core import telemetry_sql as sql
from core.conversion import NO_PROFILE, Converter, compile_profile, profile_applying_at
from core.db import translate_error
from core.errors import AppError, Unavailable
from core.redis_keys import live_sensor_channel, live_session_channel
from core.settings import Settings

log = logging.getLogger("etp.actors.sensor")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_REFRESH_S = 1.0
PROFILE_REFRESH_S = 10.0
LATE_GRACE_S = 300
FRAME_POINTS = 1000
MAX_PUBLISHES_IN_FLIGHT = 4

Publisher = Callable[[str, bytes], Awaitable[Any]]


def us_to_datetime(ts_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_us)


def datetime_to_us(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(slots=True)
class _Pending:
    ts_us: list[int]
    values: list[float]
    metas: list[Any]
    received_at: datetime
    future: asyncio.Future[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SessionWindow:
    session_id: UUID
    run_id: UUID
    start_us: int
    end_us: int | None  # None while the session runs


@dataclass(slots=True)
class ProfileTimeline:
    """Which converter applies at a timestamp: boundaries and the winner of each segment."""

    boundaries: list[int] = field(default_factory=list)
    segments: list[tuple[int | None, Converter]] = field(
        default_factory=lambda: [(None, NO_PROFILE)]
    )

    @classmethod
    def build(cls, profiles: list[dict[str, Any]]) -> ProfileTimeline:
        edges = sorted(
            {
                datetime_to_us(p[key])
                for p in profiles
                for key in ("valid_from", "valid_to")
                if p.get(key) is not None
            }
        )
        starts = [None, *edges]
        segments: list[tuple[int | None, Converter]] = []
        for start in starts:
            at = us_to_datetime(start) if start is not None else datetime.min.replace(tzinfo=UTC)
            chosen = profile_applying_at(profiles, at)
            if chosen is None:
                segments.append((None, NO_PROFILE))
            else:
                segments.append(
                    (int(chosen["version"]), compile_profile(chosen["kind"], chosen["payload"]))
                )
        return cls(boundaries=edges, segments=segments)

    def segment_of(self, ts_us: int) -> int:
        return bisect.bisect_right(self.boundaries, ts_us)


class SensorWriter:
    """One sensor's buffer and write path. ``connection`` is shared in packed placement."""

    def __init__(
        self,
        sensor_id: UUID,
        settings: Settings,
        *,
        connection: SharedConnection,
        publish: Publisher | None = None,
    ):
        self.sensor_id = sensor_id
        self.settings = settings
        self.connection = connection
        self.publish = publish
        self.pending: list[_Pending] = []
        self.pending_points = 0
        self.flush_task: asyncio.Task[None] | None = None
        self.timeline = ProfileTimeline()
        self.profiles_loaded_at = 0.0
        self.windows: list[SessionWindow] = []
        self.windows_loaded_at = 0.0
        self.last_activity = time.monotonic()
        self.publishing: set[asyncio.Task[None]] = set()
        self.stats = {
            "frames_dropped": 0,
            "points_committed": 0,
            "duplicates": 0,
            "flushes": 0,
            "flush_failures": 0,
            "last_flush_ms": 0.0,
            "last_flush_points": 0,
        }

    # Intake -----------------------------------------------------------------------------------

    async def ingest(
        self, ts_us: list[int], values: list[float], metas: list[Any]
    ) -> dict[str, Any]:
        """Resolves after the commit holding these points: accepted and duplicate counts."""
        self.last_activity = time.monotonic()
        if self.pending_points + len(ts_us) > self.settings.sensor_buffer_max_points:
            return {
                "ok": False,
                "code": "rate_limited",
                "retry_after_s": 1.0,
                "message": "this sensor's write backlog is full; retry shortly",
            }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(ts_us, values, metas, datetime.now(UTC), future))
        self.pending_points += len(ts_us)
        self._schedule_flush()
        return await future

    def _schedule_flush(self) -> None:
        # A running drain picks up whatever arrives meanwhile; otherwise start one now.
        if self.flush_task is None or self.flush_task.done():
            self.flush_task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Flushes until the buffer is empty; one transaction at a time."""
        delay_s = self.settings.flush_interval_ms / 1000
        while self.pending:
            if delay_s > 0 and self.pending_points < self.settings.flush_max_points:
                await asyncio.sleep(delay_s)  # optional commit delay: bigger, fewer commits
            taken: list[_Pending] = []
            count = 0
            while self.pending and (
                not taken or count + len(self.pending[0].ts_us) <= self.settings.flush_max_points
            ):
                item = self.pending.pop(0)
                taken.append(item)
                count += len(item.ts_us)
            self.pending_points -= count
            await self._flush(taken)

    async def flush(self) -> dict[str, Any]:
        """Waits until everything buffered so far is committed (the stop barrier)."""
        while self.flush_task is not None and not self.flush_task.done():
            await asyncio.shield(self.flush_task)
        if self.pending:
            self._schedule_flush()
            assert self.flush_task is not None
            await asyncio.shield(self.flush_task)
        return {"ok": True, "sensor_id": str(self.sensor_id)}

    # State from the database ------------------------------------------------------------------

    async def _refresh(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self.profiles_loaded_at > PROFILE_REFRESH_S:
            rows = await conn.fetch(sql.APPLICABLE_PROFILES, self.sensor_id)
            self.timeline = ProfileTimeline.build([dict(r) for r in rows])
            self.profiles_loaded_at = now
        if now - self.windows_loaded_at > WINDOW_REFRESH_S:
            rows = await conn.fetch(sql.SESSION_WINDOWS, self.sensor_id, LATE_GRACE_S)
            self.windows = [
                SessionWindow(
                    r["id"],
                    r["run_id"],
                    datetime_to_us(r["started_at"]),
                    datetime_to_us(r["stopped_at"]) if r["stopped_at"] else None,
                )
                for r in rows
            ]
            self.windows_loaded_at = now

    def invalidate_profiles(self) -> None:
        self.profiles_loaded_at = 0.0

    def set_window(self, window: SessionWindow) -> None:
        """Told by the capture-session actor at start and stop (no wait for the next refresh)."""
        self.windows = [w for w in self.windows if w.session_id != window.session_id] + [window]
        self.windows.sort(key=lambda w: w.start_us)

    def _window_of(self, ts_us: int) -> SessionWindow | None:
        chosen = None
        for window in self.windows:  # few windows; the latest-started one wins
            if window.start_us <= ts_us and (window.end_us is None or ts_us < window.end_us):
                chosen = window
        return chosen

    # The write --------------------------------------------------------------------------------

    def _rows(self, taken: list[_Pending]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        timeline, sensor_id = self.timeline, self.sensor_id
        single = len(timeline.segments) == 1
        for item in taken:
            for ts_us, value, meta in zip(item.ts_us, item.values, item.metas, strict=True):
                version, converter = timeline.segments[0 if single else timeline.segment_of(ts_us)]
                physical, status = converter.convert(value)
                window = self._window_of(ts_us) if self.windows else None
                rows.append(
                    (
                        sensor_id,
                        us_to_datetime(ts_us),
                        value,
                        physical,
                        status,
                        version,
                        window.run_id if window else None,
                        window.session_id if window else None,
                        meta,
                        item.received_at,
                    )
                )
        return rows

    async def _flush(self, taken: list[_Pending]) -> None:
        started = time.perf_counter()
        total = sum(len(item.ts_us) for item in taken)
        try:
            async with self.connection.use() as conn:
                await self._refresh(conn)
                rows = self._rows(taken)
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "telemetry_in", records=rows, columns=sql.TELEMETRY_COLUMNS
                    )
                    result = await conn.fetchrow(sql.MERGE_STAGED, [self.sensor_id], total)
        except Exception as exc:  # every failure answers the waiting requests, never hangs them
            self.stats["flush_failures"] += 1
            mapped = translate_error(exc)
            if mapped is None or not isinstance(mapped, AppError):
                log.exception("flush failed", extra={"sensor_id": str(self.sensor_id)})
                mapped = Unavailable("the write failed; retry", retry_after_s=1.0)
            else:
                log.warning(
                    "flush failed",
                    extra={"sensor_id": str(self.sensor_id), "error": str(exc)[:200]},
                )
            answer = {
                "ok": False,
                "code": mapped.code,
                "message": mapped.message,
                "retry_after_s": getattr(mapped, "retry_after_s", 1.0),
            }
            for item in taken:
                if not item.future.done():
                    item.future.set_result(answer)
            return
        assert result is not None
        inserted_keys = (
            set(result["inserted_keys"]) if result["inserted_keys"] is not None else None
        )
        prefix = f"{self.sensor_id}/"
        duplicates_total = 0
        for item in taken:
            duplicates = 0
            if inserted_keys is not None:
                duplicates = sum(1 for ts in item.ts_us if f"{prefix}{ts}" not in inserted_keys)
            duplicates_total += duplicates
            if not item.future.done():
                item.future.set_result(
                    {"ok": True, "accepted": len(item.ts_us), "duplicates": duplicates}
                )
        self.stats["points_committed"] += total - duplicates_total
        self.stats["duplicates"] += duplicates_total
        self.stats["flushes"] += 1
        self.stats["last_flush_points"] = total
        self.stats["last_flush_ms"] = (time.perf_counter() - started) * 1000
        if self.publish is not None:
            # Live fan-out runs beside the write path; a slow or absent Redis never delays it.
            if len(self.publishing) < MAX_PUBLISHES_IN_FLIGHT:
                task = asyncio.create_task(self._publish(rows))
                self.publishing.add(task)
                task.add_done_callback(self.publishing.discard)
            else:
                self.stats["frames_dropped"] += 1

    async def _publish(self, rows: list[tuple[Any, ...]]) -> None:
        """Live frames after the commit; Redis trouble never touches the write path."""
        assert self.publish is not None
        by_channel: dict[str, list[list[Any]]] = {}
        sensor = str(self.sensor_id)
        for row in rows:
            point = [datetime_to_us(row[1]), row[2], row[3], row[5], row[4]]
            by_channel.setdefault(live_sensor_channel(sensor), []).append(point)
            if row[7] is not None:
                by_channel.setdefault(live_session_channel(row[7]), []).append(point)
        for channel, points in by_channel.items():
            for start in range(0, len(points), FRAME_POINTS):
                frame = {"sensor_id": sensor, "points": points[start : start + FRAME_POINTS]}
                try:
                    await self.publish(channel, orjson.dumps(frame))
                except Exception as exc:  # live views pause; storage is already done
                    log.warning("live publish failed", extra={"error": str(exc)[:200]})
                    return

    def describe(self) -> dict[str, Any]:
        return {
            "sensor_id": str(self.sensor_id),
            "pending_points": self.pending_points,
            "pid": os.getpid(),
            "windows": len(self.windows),
            **self.stats,
        }

    def idle_for(self) -> float:
        if self.pending or (self.flush_task is not None and not self.flush_task.done()):
            return 0.0
        return time.monotonic() - self.last_activity


class SharedConnection:
    """At most one database connection per actor, reconnected after failures and released
    after ``IDLE_RELEASE_S`` without use, so quiet sensors hold no server connection."""

    IDLE_RELEASE_S = 30.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self.conn: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.releaser: asyncio.Task[None] | None = None

    async def _release_when_idle(self) -> None:
        while self.conn is not None:
            await asyncio.sleep(self.IDLE_RELEASE_S / 2)
            if time.monotonic() - self.last_used >= self.IDLE_RELEASE_S and not self.lock.locked():
                async with self.lock:
                    await self.close()

    @contextlib.asynccontextmanager
    async def use(self) -> Any:
        async with self.lock:
            if self.conn is None or self.conn.is_closed():
                from core.db import connect

                self.conn = await connect(self.settings)
                await self.conn.execute(sql.CREATE_STAGING)
                if self.releaser is None or self.releaser.done():
                    self.releaser = asyncio.create_task(self._release_when_idle())
            self.last_used = time.monotonic()
            try:
                yield self.conn
            except Exception as exc:
                # A statement error leaves the connection usable; anything else may not.
                broken = not isinstance(exc, asyncpg.PostgresError) or isinstance(
                    exc,
                    asyncpg.exceptions.AdminShutdownError
                    | asyncpg.exceptions.CannotConnectNowError,
                )
                if broken:
                    await self.discard()
                raise

    async def discard(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            with contextlib.suppress(Exception):
                conn.terminate()

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
            self.conn = None
