"""Sensor status from the last heartbeat, with a controllable clock."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.sensor_status import (
    DELAYED,
    NEVER_SEEN,
    OFFLINE,
    ONLINE,
    StatusThresholds,
    StatusTransition,
    compute_status,
    status_sql,
)
from core.settings import Settings

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEFAULTS = StatusThresholds()  # delayed after 3 intervals or 10 s, offline after 60 s


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_never_seen_whatever_the_time():
    assert compute_status(None, None, T0, DEFAULTS) == NEVER_SEEN
    assert compute_status(None, 100.0, T0 + timedelta(days=9), DEFAULTS) == NEVER_SEEN


def test_a_sensor_without_rate_goes_delayed_after_10_s_and_offline_after_60_s():
    clock = FakeClock(T0)
    last_seen = T0
    seen = []
    for step_s in (0, 5, 5, 0.001, 49.999, 0.002):
        clock.advance(step_s)
        seen.append(compute_status(last_seen, None, clock(), DEFAULTS))
    # at 0 s, 5 s, 10 s (not yet), 10.001 s, 60.0 s (not yet), 60.002 s
    assert seen == [ONLINE, ONLINE, ONLINE, DELAYED, DELAYED, OFFLINE]


def test_fast_sensors_are_not_delayed_before_the_batching_floor():
    # 100 Hz: three missed intervals are 30 ms, but clients send batches; the floor is 10 s.
    assert compute_status(T0, 100.0, T0 + timedelta(seconds=5), DEFAULTS) == ONLINE
    assert compute_status(T0, 100.0, T0 + timedelta(seconds=10.5), DEFAULTS) == DELAYED
    assert compute_status(T0, 100.0, T0 + timedelta(seconds=61), DEFAULTS) == OFFLINE


def test_slow_sensors_scale_the_thresholds_with_their_interval():
    # One point every 60 s: delayed after 3 missed intervals (180 s), offline after 360 s.
    rate = 1 / 60
    assert DEFAULTS.delayed_threshold_s(rate) == pytest.approx(180.0)
    assert DEFAULTS.offline_threshold_s(rate) == pytest.approx(360.0)
    clock = FakeClock(T0)
    clock.advance(90)
    assert compute_status(T0, rate, clock(), DEFAULTS) == ONLINE  # 60 s would say offline
    clock.advance(100)
    assert compute_status(T0, rate, clock(), DEFAULTS) == DELAYED
    clock.advance(171)
    assert compute_status(T0, rate, clock(), DEFAULTS) == OFFLINE


def test_clock_skew_counts_as_just_seen():
    assert compute_status(T0 + timedelta(seconds=30), 1.0, T0, DEFAULTS) == ONLINE


def test_thresholds_come_from_the_settings():
    settings = Settings(
        sensor_delayed_missed_intervals=5, sensor_delayed_after_s=2.0, sensor_offline_after_s=30.0
    )
    thresholds = StatusThresholds.from_settings(settings)
    assert thresholds == StatusThresholds(5, 2.0, 30.0)
    # 1 Hz: 5 missed intervals (5 s) beat the 2 s floor.
    assert compute_status(T0, 1.0, T0 + timedelta(seconds=4), thresholds) == ONLINE
    assert compute_status(T0, 1.0, T0 + timedelta(seconds=6), thresholds) == DELAYED
    assert compute_status(T0, 1.0, T0 + timedelta(seconds=31), thresholds) == OFFLINE


def test_the_sql_rule_takes_four_numbered_parameters():
    sql = status_sql("x", 7)
    assert set(re.findall(r"\$\d+", sql)) == {"$7", "$8", "$9", "$10"}
    assert "x.last_seen_at" in sql and "x.expected_rate_hz" in sql


def test_transition_payload_is_json_ready():
    import uuid

    transition = StatusTransition(
        sensor_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        name="t",
        previous=ONLINE,
        status=OFFLINE,
        last_seen_at=T0,
        at=T0 + timedelta(minutes=2),
    )
    payload = transition.payload()
    assert payload["previous_status"] == ONLINE and payload["status"] == OFFLINE
    assert payload["last_seen_at"] == T0.isoformat()
    assert isinstance(payload["sensor_id"], str)
