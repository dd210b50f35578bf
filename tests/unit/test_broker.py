"""The broker's client queues and stream cursors, without network."""

import sys
import uuid

import pytest

from api.broker import ClientQueue
from core.errors import InvalidInput
from core.telemetry_read import LiveFrame, StreamCursor, frames_of, render_points


def frame(sensor: str, start: int, count: int, r_us: int = 1) -> LiveFrame:
    return LiveFrame(
        sensor, tuple((r_us, start + i, float(i), None, None, "ok", None) for i in range(count))
    )


def test_a_queue_coalesces_to_the_latest_point_per_sensor_and_counts_drops():
    queue = ClientQueue(max_points=100, far_behind_s=60)
    for k in range(50):
        queue.offer("live:sensor:a", frame("a", k * 10, 10))
        queue.offer("live:sensor:b", frame("b", k * 10, 10))
    assert queue.points <= 100
    items, dropped = queue.take()
    assert dropped + sum(len(f.points) for _, f in items) == 1000
    latest = {f.sensor_id: f.points[-1][1] for _, f in items}
    assert latest == {"a": 499, "b": 499}  # the newest values survive coalescing
    assert queue.take() == ([], 0)


def test_queue_memory_stays_bounded_however_much_arrives():
    queue = ClientQueue(max_points=200, far_behind_s=3600)
    shared = [frame(str(uuid.uuid4()), 0, 50) for _ in range(10)]
    for _ in range(2000):
        for f in shared:
            queue.offer("c", f)
    assert queue.points <= 200 and len(queue.items) <= 200
    assert sys.getsizeof(queue.items) < 10_000  # references to shared frames, not copies


def test_a_reader_that_stops_for_too_long_is_closed_not_buffered():
    queue = ClientQueue(max_points=10, far_behind_s=0.0)
    queue.offer("c", frame("a", 0, 11))  # behind: coalesced
    assert queue.closed is None
    queue.offer("c", frame("a", 20, 11))  # still behind after far_behind_s: closed
    assert queue.closed == "too_slow" and queue.points == 0
    queue.offer("c", frame("a", 40, 5))
    assert queue.points == 0 and queue.ready.is_set()


def test_a_reader_that_keeps_up_is_never_closed():
    queue = ClientQueue(max_points=10, far_behind_s=0.0)
    for k in range(20):
        queue.offer("c", frame("a", k * 11, 11))
        queue.take()
    assert queue.closed is None


def test_cursor_takes_each_point_once_and_round_trips():
    cursor = StreamCursor(floor_us=5)
    old = LiveFrame("s", ((4, 1, 1.0, None, None, "ok", None),))  # received before the stream
    assert cursor.take_new(old) == []
    first = frame("s", 100, 3, r_us=10)
    assert [p[1] for p in cursor.take_new(first)] == [100, 101, 102]
    assert cursor.take_new(first) == []  # a duplicate frame (retried batch) adds nothing
    late = LiveFrame("s", ((11, 7, 0.0, None, None, "ok", None),))  # old ts, newer commit
    assert [p[1] for p in cursor.take_new(late)] == [7]
    cursor.seq = 9
    again = StreamCursor.decode(cursor.encode(), ["s"])
    assert (again.seq, again.floor_us, again.positions) == (9, 5, {"s": (11, 7)})
    assert StreamCursor.decode(cursor.encode(), ["other"]).positions == {}
    with pytest.raises(InvalidInput):
        StreamCursor.decode("garbage!", ["s"])


def test_cursor_filters_by_run():
    run = uuid.uuid4()
    cursor = StreamCursor(floor_us=0)
    points = ((1, 1, 1.0, None, None, "ok", run), (1, 2, 2.0, None, None, "ok", None))
    assert [p[1] for p in cursor.take_new(LiveFrame("s", points), run)] == [1]
    assert cursor.positions["s"] == (1, 2)


def test_frames_are_per_sensor_in_commit_order_and_render_values():
    rows = [
        {
            "sensor_id": "b",
            "r_us": 2,
            "ts_us": 5,
            "raw_value": 1.0,
            "physical_value": 2.0,
            "profile_version": 3,
            "conversion_status": "ok",
            "run_id": None,
        },
        {
            "sensor_id": "a",
            "r_us": 2,
            "ts_us": 1,
            "raw_value": 4.0,
            "physical_value": None,
            "profile_version": None,
            "conversion_status": "no_profile",
            "run_id": None,
        },
        {
            "sensor_id": "b",
            "r_us": 1,
            "ts_us": 9,
            "raw_value": 5.0,
            "physical_value": 6.0,
            "profile_version": 3,
            "conversion_status": "ok",
            "run_id": None,
        },
    ]
    frames = {f.sensor_id: f for f in frames_of(rows)}
    assert [p[1] for p in frames["b"].points] == [9, 5]
    assert render_points(frames["b"].points, physical=True) == [
        [9, 6.0, 3, "ok"],
        [5, 2.0, 3, "ok"],
    ]
    assert render_points(frames["a"].points, physical=False) == [[1, 4.0, None, "no_profile"]]
