"""``SensorStream``: buffered, ordered, retrying telemetry sending for device code.

    with SensorStream(token, url="http://etp.lab:8000") as stream:
        while running:
            stream.send(read_adc())          # never blocks on the network

Points queue in memory and one background thread sends them in batches, when
``max_batch_points`` are waiting or ``flush_interval_s`` has passed. Exactly one batch is in
flight at a time and a failed batch is retried (backoff with jitter, ``Retry-After`` honoured)
before any later point is sent, so the server acknowledges points in the order they were
queued. Retrying is safe: the server keeps one point per sensor and timestamp.

The buffer is bounded (``max_buffer_points``). When it is full, ``overflow="drop_oldest"``
(the default) discards the oldest queued point — a sampling loop keeps its timing and the
newest data wins, and ``stats.dropped`` counts the loss — while ``overflow="block"`` makes
``send`` wait for room (up to ``block_timeout_s``, then ``BufferFull``). Points already in
flight are never dropped. ``close()`` (and leaving the ``with`` block, and interpreter exit)
flushes what is queued, waiting at most ``close_timeout_s``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx

from etp_client.config import resolve_credentials
from etp_client.errors import EtpError
from etp_client.points import JSON_TYPE, encode_points, point
from etp_client.transport import (
    USER_AGENT,
    RetryPolicy,
    api_base,
    decode_json,
    is_retryable,
    parse_retry_after,
    raise_for_error,
)
from etp_client.types import Rejection

log = logging.getLogger("etp_client.stream")
Overflow = Literal["drop_oldest", "block"]


class BufferFull(EtpError):
    """``overflow="block"`` and no room freed up within ``block_timeout_s``."""


@dataclass
class StreamStats:
    queued: int = 0
    sent: int = 0  # points in acknowledged requests
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0  # discarded by drop_oldest
    failed: int = 0  # given up on (a non-retryable error, or close timed out)
    batches: int = 0
    retries: int = 0
    last_latency_s: float | None = None
    last_error: str | None = None


class SensorStream:
    def __init__(
        self,
        token: str,
        url: str | None = None,
        *,
        max_batch_points: int = 1000,
        flush_interval_s: float = 1.0,
        max_buffer_points: int = 100_000,
        overflow: Overflow = "drop_oldest",
        block_timeout_s: float | None = None,
        close_timeout_s: float = 30.0,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        on_rejected: Callable[[list[Rejection], list[dict[str, Any]]], None] | None = None,
    ) -> None:
        if overflow not in ("drop_oldest", "block"):
            raise ValueError("overflow must be 'drop_oldest' or 'block'")
        self.url = resolve_credentials(url, token=token).url
        self.max_batch_points = max(1, min(max_batch_points, 10_000))
        self.flush_interval_s = flush_interval_s
        self.max_buffer_points = max(max_buffer_points, self.max_batch_points)
        self.overflow = overflow
        self.block_timeout_s = block_timeout_s
        self.close_timeout_s = close_timeout_s
        self.retry = retry or RetryPolicy(backoff_max_s=30.0)
        self.on_rejected = on_rejected
        self.stats = StreamStats()
        self._http = httpx.Client(
            base_url=api_base(self.url),
            timeout=timeout_s,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Content-Type": JSON_TYPE,
            },
        )
        self._queue: deque[tuple[int, dict[str, Any]]] = deque()
        self._inflight: list[tuple[int, dict[str, Any]]] = []
        self._next_seq = 0
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._flush_requested = False
        self._thread = threading.Thread(target=self._run, name="etp-sensor-stream", daemon=True)
        self._thread.start()
        _open_streams.add(self)

    # Producer side ------------------------------------------------------------------------------

    def send(self, value: Any, ts: Any = None, meta: Mapping[str, Any] | None = None) -> None:
        """Queues one point (``ts`` defaults to now; aware datetime, ISO text or epoch)."""
        self.send_many([point(value, ts, meta)])

    def send_many(self, points: Iterable[Mapping[str, Any]]) -> None:
        """Queues ready-made points ``{"ts", "value", "meta"?}``."""
        with self._cond:
            if self._closing.is_set():
                raise RuntimeError("the stream is closed")
            for item in points:
                self._make_room()
                self._queue.append((self._next_seq, dict(item)))
                self._next_seq += 1
                self.stats.queued += 1
            if len(self._queue) >= self.max_batch_points:
                self._cond.notify_all()

    def _make_room(self) -> None:
        if len(self._queue) + len(self._inflight) < self.max_buffer_points:
            return
        if self.overflow == "drop_oldest":
            self._queue.popleft()
            self.stats.dropped += 1
            self._cond.notify_all()
            return
        deadline = None if self.block_timeout_s is None else time.monotonic() + self.block_timeout_s
        while len(self._queue) + len(self._inflight) >= self.max_buffer_points:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise BufferFull(
                    f"the buffer holds {self.max_buffer_points} unsent points",
                    code="buffer_full",
                )
            self._cond.wait(remaining)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Waits until every point queued before the call is acknowledged (or given up);
        ``False`` on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._next_seq
            self._flush_requested = True
            self._cond.notify_all()
            while self._oldest_unfinished() < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            return True

    def close(self, timeout_s: float | None = None) -> StreamStats:
        """Flushes (at most ``timeout_s``, default ``close_timeout_s``) and stops."""
        if self._closing.is_set():
            return self.stats
        wait_s = self.close_timeout_s if timeout_s is None else timeout_s
        with self._cond:
            self._deadline = time.monotonic() + wait_s
            self._closing.set()
            self._cond.notify_all()
        self._thread.join(wait_s + 5)
        with self._cond:
            lost = len(self._queue) + len(self._inflight)
            if lost:
                self.stats.failed += lost
                log.error("sensor stream closed with %d unsent points", lost)
            self._queue.clear()
            self._inflight.clear()
        self._http.close()
        _open_streams.discard(self)
        return self.stats

    def __enter__(self) -> SensorStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Points queued or in flight."""
        with self._cond:
            return len(self._queue) + len(self._inflight)

    # Sender thread --------------------------------------------------------------------------------

    def _oldest_unfinished(self) -> int:
        if self._inflight:
            return self._inflight[0][0]
        if self._queue:
            return self._queue[0][0]
        return self._next_seq

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception as exc:  # never die silently: count, log, go on
                log.exception("sensor stream: unexpected error")
                self._finish(batch, failed=True, error=str(exc))

    def _next_batch(self) -> list[tuple[int, dict[str, Any]]] | None:
        with self._cond:
            waited_since = time.monotonic()
            while True:
                if self._closing.is_set() and not self._queue:
                    return None
                due = time.monotonic() - waited_since >= self.flush_interval_s
                if self._queue and (
                    len(self._queue) >= self.max_batch_points
                    or due
                    or self._flush_requested
                    or self._closing.is_set()
                ):
                    break
                self._cond.wait(self.flush_interval_s if self._queue else 0.5)
                if not self._queue:
                    waited_since = time.monotonic()
            size = min(self.max_batch_points, len(self._queue))
            self._inflight = [self._queue.popleft() for _ in range(size)]
            if not self._queue:
                self._flush_requested = False
            return self._inflight

    def _deliver(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        points = [p for _, p in batch]
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = self._http.post("/telemetry", content=encode_points(points))
            except httpx.TransportError as exc:
                if not self._wait_before_retry(attempt, None, f"{type(exc).__name__}: {exc}"):
                    self._finish(batch, failed=True, error=str(exc))
                    return
                continue
            if is_retryable(response):
                after = parse_retry_after(response.headers.get("Retry-After"))
                if not self._wait_before_retry(attempt, after, f"HTTP {response.status_code}"):
                    self._finish(batch, failed=True, error=f"HTTP {response.status_code}")
                    return
                continue
            self.stats.last_latency_s = time.monotonic() - started
            if response.status_code == 413 and len(batch) > 1:
                self._split(batch)
                return
            try:
                raise_for_error(response)
            except EtpError as exc:
                rejected = exc.details.get("rejected") if exc.details else None
                if isinstance(rejected, list) and self.on_rejected:
                    self.on_rejected(rejected, points)
                self._finish(batch, failed=True, error=str(exc), rejected=rejected)
                return
            body = decode_json(response) or {}
            rejections: list[Rejection] = body.get("rejected") or []
            if rejections and self.on_rejected:
                self.on_rejected(rejections, points)
            with self._cond:
                self.stats.sent += len(batch)
                self.stats.accepted += int(body.get("accepted", 0))
                self.stats.duplicates += int(body.get("duplicates", 0))
                self.stats.rejected += len(rejections)
                self.stats.batches += 1
            self._finish(batch)
            return

    def _wait_before_retry(self, attempt: int, retry_after_s: float | None, why: str) -> bool:
        """Sleeps before the next try; ``False`` when closing and out of time."""
        delay = self.retry.delay_s(attempt, retry_after_s)
        with self._cond:
            self.stats.retries += 1
            self.stats.last_error = why
            deadline = self._deadline
        if deadline is not None and time.monotonic() + delay > deadline:
            return False
        # A close() during the wait shortens nothing: the batch must still go first.
        time.sleep(delay)
        return True

    def _split(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        """413: halve the batch size and put the batch back at the front, order intact."""
        with self._cond:
            self.max_batch_points = max(1, len(batch) // 2)
            self._queue.extendleft(reversed(batch))
            self._inflight = []
            self._cond.notify_all()

    def _finish(
        self,
        batch: list[tuple[int, dict[str, Any]]],
        *,
        failed: bool = False,
        error: str | None = None,
        rejected: Any = None,
    ) -> None:
        with self._cond:
            if failed:
                if isinstance(rejected, list) and rejected and len(rejected) == len(batch):
                    self.stats.rejected += len(batch)
                else:
                    self.stats.failed += len(batch)
                self.stats.last_error = error
                log.warning("sensor stream gave up on %d points: %s", len(batch), error)
            self._inflight = []
            self._cond.notify_all()


_open_streams: weakref.WeakSet[SensorStream] = weakref.WeakSet()


@atexit.register
def _close_open_streams() -> None:
    for stream in list(_open_streams):
        stream.close()
