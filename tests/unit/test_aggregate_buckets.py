"""Choosing bucket widths and aligning ranges for downsampling."""

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidInput
from core.telemetry_read import BUCKET_LADDER_MS, Target, choose_bucket_ms, plan_buckets, time_range

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("range_s", "max_points", "width_ms"),
    [
        (1, 1000, 1),
        (10, 1000, 10),
        (3600, 2000, 2_000),
        (86_400, 2000, 60_000),
        (7 * 86_400, 2000, 600_000),
        (365 * 86_400, 10, 86_400_000 * 37),
    ],
)
def test_the_smallest_ladder_width_that_fits(range_s, max_points, width_ms):
    assert choose_bucket_ms(range_s * 1000, max_points) == width_ms
    assert range_s * 1000 / width_ms <= max_points


def test_every_ladder_width_from_a_minute_is_whole_minutes():
    assert all(w % 60_000 == 0 for w in BUCKET_LADDER_MS if w >= 60_000)


def test_sub_minute_buckets_come_from_raw_points_and_align_to_the_epoch():
    plan = plan_buckets(T0 + timedelta(seconds=7.3), T0 + timedelta(minutes=10), 300)
    assert plan.width == timedelta(seconds=2) and not plan.rollup
    assert plan.start == T0 + timedelta(seconds=6) and plan.end == T0 + timedelta(minutes=10)
    assert (plan.end - plan.start) / plan.width <= 301


def test_minute_buckets_use_rollups_and_cover_whole_buckets():
    plan = plan_buckets(T0 + timedelta(minutes=3, seconds=5), T0 + timedelta(hours=7), 100)
    assert plan.width == timedelta(minutes=5) and plan.rollup
    assert plan.start == T0 and plan.end == T0 + timedelta(hours=7)


def test_relative_buckets_start_at_the_session_start_or_its_minute():
    start = T0 + timedelta(seconds=12.5)
    fine = plan_buckets(start, start + timedelta(seconds=20), 100, origin=start)
    assert fine.origin == start and fine.start == start and not fine.rollup
    coarse = plan_buckets(start, start + timedelta(days=2), 100, origin=start)
    assert coarse.rollup and coarse.origin == T0  # at most 59 s early, rollups stay exact


def test_ranges_default_to_the_session_window_and_must_not_be_empty():
    target = Target(sensors=(), started_at=T0, stopped_at=T0 + timedelta(hours=1))
    assert time_range(target, None, None, now=T0) == (T0, T0 + timedelta(hours=1, microseconds=1))
    with pytest.raises(InvalidInput):
        time_range(target, T0, T0, now=T0)
