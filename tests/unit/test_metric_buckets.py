"""Metric batches and step buckets, without a database."""

import math
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.errors import InvalidInput, PayloadTooLarge
from core.metrics import (
    BATCH_MAX,
    BODY_MAX_BYTES,
    NAME_MAX,
    MetricPoint,
    live_message,
    parse_metric_batch,
    plan_step_buckets,
    summarise_batch,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def body(*metrics):
    return orjson.dumps({"metrics": list(metrics)})


def test_a_batch_parses_with_defaults_and_both_time_forms():
    points = parse_metric_batch(
        body(
            {"name": "loss", "value": 1},
            {"name": "val/acc 1.0-x_y", "value": 0.5, "step": 7, "ts": 1_000},
            {"name": "lr", "value": -2.5e-3, "step": -3, "ts": "2026-01-01T00:00:00+01:00"},
        ),
        now=NOW,
    )
    assert points == [
        MetricPoint("loss", 0, 1.0, NOW),
        MetricPoint("val/acc 1.0-x_y", 7, 0.5, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        MetricPoint("lr", -3, -2.5e-3, datetime(2025, 12, 31, 23, tzinfo=UTC)),
    ]
    assert isinstance(points[0].value, float)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "", "value": 1},
        {"name": "x" * (NAME_MAX + 1), "value": 1},
        {"name": "bad,name", "value": 1},
        {"name": "tab\tname", "value": 1},
        {"name": "ünïcode", "value": 1},
        {"name": 5, "value": 1},
        {"name": "ok", "value": True},
        {"name": "ok", "value": "1.0"},
        {"name": "ok", "value": 1e308 * 10},
        {"name": "ok", "value": 1, "step": 1.5},
        {"name": "ok", "value": 1, "step": 2**63},
        {"name": "ok", "value": 1, "ts": "2026-01-01T00:00:00"},  # no offset
        {"name": "ok", "value": 1, "ts": "yesterday"},
        {"name": "ok", "value": 1, "extra": 1},
        ["ok", 1],
    ],
)
def test_invalid_entries_are_refused_with_their_index(entry):
    raw = orjson.dumps({"metrics": [{"name": "fine", "value": 1}, entry]})
    with pytest.raises(InvalidInput) as caught:
        parse_metric_batch(raw, now=NOW)
    assert caught.value.details["errors"][0]["index"] == 1
    assert caught.value.message.startswith("metrics[1]")


def test_nan_and_infinity_literals_are_refused():
    with pytest.raises(InvalidInput):
        parse_metric_batch(b'{"metrics": [{"name": "x", "value": NaN}]}', now=NOW)


def test_limits_answer_413_naming_the_limit():
    with pytest.raises(PayloadTooLarge) as caught:
        parse_metric_batch(
            body(*({"name": "x", "value": 1} for _ in range(BATCH_MAX + 1))), now=NOW
        )
    assert caught.value.details == {"limit": BATCH_MAX, "count": BATCH_MAX + 1}
    assert str(BATCH_MAX) in caught.value.message
    parse_metric_batch(body(*({"name": "x", "value": 1} for _ in range(BATCH_MAX))), now=NOW)
    with pytest.raises(PayloadTooLarge) as caught:
        parse_metric_batch(b" " * (BODY_MAX_BYTES + 1), now=NOW)
    assert caught.value.details["limit_bytes"] == BODY_MAX_BYTES
    for bad in (b"[]", b'{"metrics": []}', b'{"metrics": 1}', b'{"points": []}'):
        with pytest.raises(InvalidInput):
            parse_metric_batch(bad, now=NOW)


def test_batch_summary_takes_the_last_point_by_step_then_time_then_order():
    t0 = NOW
    points = [
        MetricPoint("a", 5, 1.0, t0),
        MetricPoint("a", 9, 4.0, t0),
        MetricPoint("a", 9, 2.0, t0 - timedelta(seconds=1)),  # older at the same step
        MetricPoint("a", 9, 3.0, t0),  # same step and time, later entry wins
        MetricPoint("a", 1, -7.0, t0 + timedelta(days=1)),
        MetricPoint("b", 0, 8.0, t0),
    ]
    [a, b] = summarise_batch(points)
    assert a == ("a", 5, 3.0, -7.0, 4.0, 1, 9, 3.0, t0)
    assert b == ("b", 1, 8.0, 8.0, 8.0, 0, 0, 8.0, t0)


@pytest.mark.parametrize(
    ("first", "last", "max_points", "expected"),
    [
        (0, 9, 10, (0, 9, 1)),
        (0, 9, 3, (0, 9, 4)),
        (0, 9_999, 500, (0, 9_999, 20)),
        (0, 10_000, 500, (0, 10_000, 21)),
        (-5, 5, 1, (-5, 5, 11)),
        (7, 7, 100, (7, 7, 1)),
    ],
)
def test_bucket_plans_cover_the_range_in_at_most_max_points_buckets(
    first, last, max_points, expected
):
    plan = plan_step_buckets(first, last, max_points)
    assert (plan.lo, plan.hi, plan.width) == expected
    buckets = {(step - plan.lo) // plan.width for step in range(first, last + 1)}
    assert len(buckets) <= max_points
    assert plan.width == 1 or math.ceil((last - first + 1) / (plan.width - 1)) > max_points


def test_bucket_plans_narrow_to_the_requested_steps():
    plan = plan_step_buckets(0, 1000, 10, step_from=100, step_to=199)
    assert (plan.lo, plan.hi, plan.width) == (100, 199, 10)
    assert plan_step_buckets(0, 10, 10, step_from=11) is None
    assert plan_step_buckets(5, 10, 10, step_from=0, step_to=4) is None


def test_random_bucketing_keeps_every_extreme():
    rng = random.Random(7)
    steps = sorted(rng.sample(range(100_000), 3_000))
    values = {s: rng.gauss(0, 1) for s in steps}
    plan = plan_step_buckets(steps[0], steps[-1], 97)
    buckets: dict[int, list[float]] = {}
    for s in steps:
        buckets.setdefault((s - plan.lo) // plan.width, []).append(values[s])
    assert len(buckets) <= 97
    assert max(max(v) for v in buckets.values()) == max(values.values())
    assert min(min(v) for v in buckets.values()) == min(values.values())


def test_live_messages_truncate_big_batches_to_the_last_point_per_name():
    small = [MetricPoint("a", i, float(i), NOW) for i in range(3)]
    message = orjson.loads(live_message("r", small))
    assert message["count"] == 3 and not message["truncated"] and len(message["points"]) == 3
    big = [MetricPoint(n, i, float(i), NOW) for i in range(600) for n in ("a", "b")]
    message = orjson.loads(live_message("r", big))
    assert message["truncated"] and message["count"] == 1200
    assert sorted(p[:3] for p in message["points"]) == [["a", 599, 599.0], ["b", 599, 599.0]]
