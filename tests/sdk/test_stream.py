"""``SensorStream``: batching, order, retries on 429, bounded buffer, flush on close."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from etp_client import BufferFull, Client, RetryPolicy, SensorStream


def _history_values(client: Client, sensor_id: str, since: datetime) -> list[float]:
    points = client.telemetry_history(sensor_ids=[sensor_id], from_=since)
    return [p["value"] for p in points]


def test_points_are_batched_acknowledged_in_order_and_flushed_on_exit(
    stack: str, client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "device")
    start = datetime.now(UTC) - timedelta(minutes=1)
    with SensorStream(sensor["token"], stack, max_batch_points=100, flush_interval_s=5) as stream:
        for i in range(250):
            stream.send(float(i), ts=start + timedelta(milliseconds=10 * i), meta={"i": i})
        # 200 went in two full batches without waiting for the interval; 50 wait for exit.
        deadline = time.monotonic() + 10
        while stream.stats.sent < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.stats.sent == 200 and stream.pending == 50
    stats = stream.stats
    assert (stats.sent, stats.accepted, stats.batches, stats.failed) == (250, 250, 3, 0)
    assert _history_values(client, sensor["id"], start) == [float(i) for i in range(250)]


def test_rejections_are_counted_and_reported(
    stack: str, client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "faulty")
    seen: list[Any] = []
    with SensorStream(
        sensor["token"], stack, on_rejected=lambda r, _points: seen.extend(r)
    ) as stream:
        stream.send(1.0)
        stream.send(float("nan"), ts=datetime.now(UTC) - timedelta(seconds=1))
        stream.send("text", ts=datetime.now(UTC) - timedelta(seconds=2))
        assert stream.flush(timeout_s=10)
    assert (stream.stats.accepted, stream.stats.rejected) == (1, 2)
    assert sorted(r["code"] for r in seen) == ["invalid_value", "invalid_value"]


def test_rate_limited_batches_are_retried_without_reordering(
    stack: str, client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "limited", rate_points_per_s=50.0, burst_points=40)
    start = datetime.now(UTC) - timedelta(minutes=1)
    stream = SensorStream(
        sensor["token"],
        stack,
        max_batch_points=40,
        flush_interval_s=0.05,
        retry=RetryPolicy(backoff_base_s=0.05, backoff_max_s=0.5),
    )
    for i in range(120):
        stream.send(float(i), ts=start + timedelta(milliseconds=i))
    stats = stream.close(timeout_s=20)
    assert stats.accepted == 120 and stats.failed == 0
    assert stats.retries >= 1  # 120 points at 50/s with a burst of 40 must hit the limit
    assert _history_values(client, sensor["id"], start) == [float(i) for i in range(120)]


def test_drop_oldest_keeps_the_newest_points_when_the_server_is_unreachable() -> None:
    stream = SensorStream(
        "etps_unused",
        "http://127.0.0.1:9",
        max_batch_points=10,
        max_buffer_points=50,
        flush_interval_s=0.01,
        retry=RetryPolicy(backoff_base_s=0.2, backoff_max_s=0.2),
    )
    for i in range(200):
        stream.send(float(i))
    assert stream.pending <= 50
    assert stream.stats.dropped >= 150
    assert not stream.flush(timeout_s=0.3)
    stats = stream.close(timeout_s=0.5)
    assert stats.accepted == 0 and stats.failed + stats.dropped == 200


def test_block_mode_waits_for_room_then_raises() -> None:
    stream = SensorStream(
        "etps_unused",
        "http://127.0.0.1:9",
        max_batch_points=5,
        max_buffer_points=10,
        overflow="block",
        block_timeout_s=0.3,
        retry=RetryPolicy(backoff_base_s=1, backoff_max_s=1),
    )
    started = time.monotonic()
    with pytest.raises(BufferFull):
        for i in range(50):
            stream.send(float(i))
    assert time.monotonic() - started >= 0.3
    assert stream.stats.dropped == 0
    stream.close(timeout_s=0.2)


def test_points_still_queued_at_interpreter_exit_are_flushed(
    stack: str, client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "exiting")
    since = datetime.now(UTC) - timedelta(minutes=1)
    start_us = int(since.timestamp() * 1_000_000)
    script = (
        "from etp_client import SensorStream\n"
        f"s = SensorStream({sensor['token']!r}, {stack!r}, flush_interval_s=60)\n"
        "for i in range(30):\n"
        f"    s.send(float(i), ts={start_us} + 1000 * i)\n"
    )  # no close(): the atexit hook must flush
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _history_values(client, sensor["id"], since) == [float(i) for i in range(30)]
