"""Live fan-out for one api process: one Redis subscription per channel in use, shared by every
local client, each client with a bounded queue.

Framework-free: handlers subscribe a ``ClientQueue`` to channels and drain it. The broker turns
the writers' frames into ``LiveFrame`` s through ``stamp`` (the stored rows with their commit
positions, so every stream can resume exactly), and after a Redis reconnect asks ``gap_fill``
for what was committed meanwhile. A slow client's queue coalesces (latest point per sensor, a
``dropped`` count) and closes only when the client stops reading for ``far_behind_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import redis.asyncio as aioredis

from core.db import Database
from core.errors import AppError, NotFound, Unavailable
from core.principal import Principal
from core.redis_keys import live_sensor_channel, live_session_channel
from core.stores import telemetry as store
from core.telemetry_read import (
    LiveFrame,
    LivePoint,
    Position,
    StreamCursor,
    Target,
    frames_of,
    position_of,
    principal_is_live,
    render_points,
    resolve_target,
)

log = logging.getLogger("etp.api.broker")
GAP_FILL_MAX_POINTS = 200_000  # per stream; beyond it a client should page the history


class ClientQueue:
    """One client's bounded queue of ``(channel, frame)``; coalesces instead of growing."""

    def __init__(self, *, max_points: int = 2_000, far_behind_s: float = 30.0):
        self.max_points = max_points
        self.far_behind_s = far_behind_s
        self.items: deque[tuple[str, LiveFrame]] = deque()
        self.points = 0
        self.dropped = 0
        self.behind_since: float | None = None
        self.closed: str | None = None
        self.ready = asyncio.Event()

    def offer(self, channel: str, frame: LiveFrame) -> None:
        """Never blocks: a slow reader costs only its own queue."""
        if self.closed is not None:
            return
        self.items.append((channel, frame))
        self.points += len(frame.points)
        if self.points > self.max_points:
            self._coalesce()
        self.ready.set()

    def _coalesce(self) -> None:
        now = time.monotonic()
        if self.behind_since is None:
            self.behind_since = now
        elif now - self.behind_since > self.far_behind_s:
            self.close("too_slow")
            return
        latest: dict[tuple[str, str], LivePoint] = {}
        for channel, frame in self.items:
            latest[(channel, frame.sensor_id)] = frame.points[-1]
        kept = list(latest.items())[-self.max_points :]
        self.dropped += self.points - len(kept)
        self.items = deque((ch, LiveFrame(sensor, (p,))) for (ch, sensor), p in kept)
        self.points = len(kept)

    def take(self) -> tuple[list[tuple[str, LiveFrame]], int]:
        """Everything queued and the count coalesced away since the last take."""
        items, dropped = list(self.items), self.dropped
        self.items.clear()
        self.points = self.dropped = 0
        self.behind_since = None
        self.ready.clear()
        return items, dropped

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout_s)

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self.items.clear()
            self.points = 0
        self.ready.set()


Stamp = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[list[tuple[str, LiveFrame]]]]
GapFill = Callable[[str, dict[str, Position], int], Awaitable[list[LiveFrame]]]


class Broker:
    """The process's live subscriptions; ``start`` once, then ``subscribe``/``unsubscribe``."""

    def __init__(
        self,
        redis_url: str,
        *,
        stamp: Stamp,
        gap_fill: GapFill,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1_000,
        batch_max: int = 512,
    ):
        self.redis_url = redis_url
        self.stamp = stamp
        self.gap_fill = gap_fill
        self.clock_us = clock_us
        self.batch_max = batch_max
        self.members: dict[str, set[ClientQueue]] = {}
        self.positions: dict[str, dict[str, Position]] = {}
        self.floors: dict[str, int] = {}  # when each channel was first subscribed
        self.confirmed: dict[str, asyncio.Event] = {}
        self.pubsub: Any = None
        self.wake = asyncio.Event()
        self.resync = False  # set when redis-py reconnected by itself: gap-fill before reading on
        self.task: asyncio.Task[None] | None = None
        self.stats = {"frames": 0, "reconnects": 0, "stamp_failures": 0}

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name="etp-live-broker")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        for queues in self.members.values():
            for queue in queues:
                queue.close("shutdown")

    async def subscribe(self, queue: ClientQueue, channels: Sequence[str]) -> None:
        """Adds the queue to the channels; returns once Redis confirmed each subscription."""
        new = [ch for ch in channels if ch not in self.members]
        for channel in channels:
            self.members.setdefault(channel, set()).add(queue)
        for channel in new:
            self.confirmed[channel] = asyncio.Event()
            self.floors[channel] = self.clock_us()
            self.positions[channel] = {}
        self.wake.set()
        if new and self.pubsub is not None:
            with contextlib.suppress(Exception):  # the reader resubscribes after reconnecting
                await self.pubsub.subscribe(*new)
        try:
            for channel in channels:
                confirmed = self.confirmed.get(channel)
                if confirmed is not None:
                    await asyncio.wait_for(confirmed.wait(), 5.0)
        except TimeoutError:
            await self.unsubscribe(queue, channels)
            raise Unavailable("live updates are unavailable (Redis)", retry_after_s=2.0) from None

    async def unsubscribe(self, queue: ClientQueue, channels: Sequence[str]) -> None:
        gone = []
        for channel in channels:
            queues = self.members.get(channel)
            if queues is None:
                continue
            queues.discard(queue)
            if not queues:
                gone.append(channel)
                del self.members[channel]
                self.positions.pop(channel, None)
                self.floors.pop(channel, None)
                self.confirmed.pop(channel, None)
        if gone and self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.unsubscribe(*gone)

    def _deliver(self, channel: str, frame: LiveFrame) -> None:
        queues = self.members.get(channel)
        if not queues or not frame.points:
            return
        positions = self.positions[channel]
        last = position_of(frame.points[-1])
        if last > positions.get(frame.sensor_id, (0, 0)):
            positions[frame.sensor_id] = last
        self.stats["frames"] += 1
        for queue in list(queues):
            queue.offer(channel, frame)

    async def _run(self) -> None:
        backoff_s = 0.2
        connected_before = False
        while True:
            if not self.members:
                self.wake.clear()
                await self.wake.wait()
                continue
            client = aioredis.from_url(self.redis_url, health_check_interval=10)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*list(self.members))
                self.pubsub = pubsub
                late = [ch for ch, done in self.confirmed.items() if not done.is_set()]
                if late:  # subscribed while this connection was being set up
                    await pubsub.subscribe(*late)
                # redis-py may reconnect (and resubscribe) inside a read: frames published
                # meanwhile are lost, so every later connect asks for a gap-fill.
                pubsub.connection.register_connect_callback(self._on_reconnect)
                backoff_s = 0.2
                if connected_before:
                    self.stats["reconnects"] += 1
                    await self._gap_fill_all()
                connected_before = True
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: reconnect, then gap-fill from the DB
                log.warning(
                    "live broker lost Redis",
                    extra={"error": str(exc)[:200], "retry_in_s": backoff_s},
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
            finally:
                self.pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()

    def _on_reconnect(self, _connection: Any) -> None:
        self.resync = True

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if self.resync:
                self.resync = False
                self.stats["reconnects"] += 1
                await self._gap_fill_all()
            batch: list[tuple[str, dict[str, Any]]] = []
            while message is not None and len(batch) < self.batch_max:
                self._take(message, batch)
                message = await pubsub.get_message(timeout=0.0)
            if batch:
                try:
                    stamped = await self.stamp(batch)
                except Exception:  # a bad batch or a database hiccup costs only this batch
                    self.stats["stamp_failures"] += 1
                    log.exception("could not stamp live frames")
                    continue
                for channel, frame in stamped:
                    self._deliver(channel, frame)

    def _take(self, message: dict[str, Any], batch: list[tuple[str, dict[str, Any]]]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if message["type"] == "subscribe":
            event = self.confirmed.get(channel)
            if event is not None:
                event.set()
        elif message["type"] == "message" and channel in self.members:
            try:
                batch.append((channel, orjson.loads(message["data"])))
            except orjson.JSONDecodeError:
                log.warning("unreadable live frame", extra={"channel": channel})

    async def _gap_fill_all(self) -> None:
        """After a reconnect: what each channel missed, from the database, then live."""
        for channel in list(self.members):
            try:
                frames = await self.gap_fill(
                    channel, dict(self.positions.get(channel, {})), self.floors.get(channel, 0)
                )
            except Exception:
                log.exception("live gap-fill failed", extra={"channel": channel})
                continue
            for frame in frames:
                self._deliver(channel, frame)


# Subscriptions --------------------------------------------------------------------------------


@dataclass(slots=True)
class Subscription:
    """One stream of points (an SSE stream, or one WebSocket channel) and where it stands."""

    name: str
    target: Target
    physical: bool
    cursor: StreamCursor
    channels: list[str] = field(init=False)
    sensor_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.target.capture_session_id is not None:
            self.channels = [live_session_channel(self.target.capture_session_id)]
        else:
            self.channels = [live_sensor_channel(s) for s in self.target.sensor_ids]
        self.sensor_names = frozenset(str(s) for s in self.target.sensor_ids)

    def accept(self, channel: str, frame: LiveFrame) -> list[list[Any]]:
        if channel not in self.channels or frame.sensor_id not in self.sensor_names:
            return []
        return render_points(self.cursor.take_new(frame, self.target.run_id), self.physical)

    def data(self, sensor_id: str, points: list[list[Any]], dropped: int) -> dict[str, Any]:
        self.cursor.seq += 1
        body: dict[str, Any] = {"sensor_id": sensor_id, "points": points, "seq": self.cursor.seq}
        if dropped:
            body["dropped"] = dropped
        return body


async def catch_up(sub: Subscription, db: Database) -> AsyncIterator[tuple[str, list[list[Any]]]]:
    """What was committed after the cursor, from the database, up to the live edge."""
    sent = 0
    for sensor in sub.target.sensor_ids:
        channel = sub.channels[0] if sub.target.capture_session_id else live_sensor_channel(sensor)
        while sent < GAP_FILL_MAX_POINTS:
            async with db.acquire() as conn:
                rows = await store.fetch_tail(
                    conn,
                    sensor_id=sensor,
                    after_r_us=sub.cursor.position(str(sensor))[0],
                    after_ts_us=sub.cursor.position(str(sensor))[1],
                    run_id=sub.target.run_id,
                    capture_session_id=sub.target.capture_session_id,
                    limit=2_000,
                )
            if not rows:
                break
            sent += len(rows)
            for frame in frames_of(rows):
                points = sub.accept(channel, frame)
                if points:
                    yield frame.sensor_id, points


@dataclass(eq=False)
class LiveStream:
    """One connection (SSE or WebSocket) of one caller: its queue and subscriptions."""

    caller: Principal
    db: Database
    queue: ClientQueue = field(default_factory=ClientQueue)
    subs: dict[str, Subscription] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)  # subscriptions that lost access

    async def revalidate(self) -> None:
        """Closes what the caller may no longer read (the whole stream if the login ended)."""
        try:
            async with self.db.acquire() as conn:
                if not await principal_is_live(conn, self.caller):
                    self.queue.close("access_revoked")
                    return
                for name, sub in list(self.subs.items()):
                    try:
                        await resolve_target(
                            conn,
                            user_id=self.caller.user_id,
                            sensor_ids=sub.target.sensor_ids,
                            run_id=sub.target.run_id,
                            capture_session_id=sub.target.capture_session_id,
                        )
                    except NotFound:
                        self.revoked.append(name)
        except AppError as exc:  # cannot check now: fail closed
            log.warning("revalidation failed", extra={"error": exc.message})
            self.queue.close("access_revoked")
            return
        if self.revoked:
            self.queue.ready.set()


class Revocations:
    """Open streams by user; a revocation message re-validates that user's streams."""

    def __init__(self) -> None:
        self.streams: dict[UUID, set[LiveStream]] = {}

    def add(self, stream: LiveStream) -> None:
        self.streams.setdefault(stream.caller.user_id, set()).add(stream)

    def remove(self, stream: LiveStream) -> None:
        streams = self.streams.get(stream.caller.user_id, set())
        streams.discard(stream)
        if not streams:
            self.streams.pop(stream.caller.user_id, None)

    async def handle_message(self, data: bytes) -> None:
        user_id = UUID(orjson.loads(data)["user_id"])
        streams = list(self.streams.get(user_id, ()))
        await asyncio.gather(*(s.revalidate() for s in streams))
