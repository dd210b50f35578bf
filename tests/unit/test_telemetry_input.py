"""Parsing ingest bodies: JSON points, line protocol, gzip bounds, per-point rejections."""

import gzip
import math
import zlib
from datetime import UTC, datetime

import orjson
import pytest

from core.errors import AppError, InvalidInput, PayloadTooLarge
from core.line_protocol import parse_line
from core.telemetry_input import (
    Limits,
    decode_body,
    epoch_to_us,
    parse_json_points,
    parse_line_points,
)

NOW_US = 1_800_000_000_000_000  # 2027-01-15
LIMITS = Limits(max_points=100, max_bytes=10_000, max_past_s=3600, max_future_s=60)


def parse(points):
    return parse_json_points(orjson.dumps({"points": points}), now_us=NOW_US, limits=LIMITS)


def test_good_points_in_every_timestamp_form():
    batch = parse(
        [
            {"ts": "2027-01-15T08:00:00+00:00", "value": 1.5},
            {"ts": "2027-01-15T08:00:00.000001Z", "value": 2},
            {"ts": NOW_US // 1000, "value": 3, "meta": {"unit": "V"}},  # ms
            {"ts": NOW_US * 1000, "value": 4},  # ns
            {"ts": NOW_US // 1_000_000, "value": 5},  # s
        ]
    )
    assert batch.rejected == []
    expected = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp() * 1_000_000
    assert batch.ts_us[0] == int(expected)
    assert batch.ts_us[1] == batch.ts_us[0] + 1
    assert batch.ts_us[2:] == [NOW_US, NOW_US, NOW_US]
    assert batch.values == [1.5, 2.0, 3.0, 4.0, 5.0]
    assert batch.metas[2] == {"unit": "V"}


@pytest.mark.parametrize(
    ("point", "code"),
    [
        ({"ts": "2027-01-15T08:00:00", "value": 1}, "invalid_timestamp"),  # no offset
        ({"ts": "yesterday", "value": 1}, "invalid_timestamp"),
        ({"ts": True, "value": 1}, "invalid_timestamp"),
        ({"ts": NOW_US // 1000, "value": "1.0"}, "invalid_value"),
        ({"ts": NOW_US // 1000, "value": True}, "invalid_value"),
        ({"ts": NOW_US // 1000}, "invalid_value"),
        ({"ts": NOW_US // 1000, "value": 1, "meta": [1]}, "invalid_meta"),
        ({"ts": NOW_US // 1000, "value": 1, "meta": {"k": "x" * 3000}}, "invalid_meta"),
        ({"ts": NOW_US // 1000, "value": 1, "extra": 1}, "invalid_point"),
        ([1, 2], "invalid_point"),
        ({"ts": (NOW_US + 61_000_000) // 1000, "value": 1}, "timestamp_in_future"),
        ({"ts": (NOW_US - 3_601_000_000) // 1000, "value": 1}, "timestamp_too_old"),
    ],
)
def test_bad_points_are_rejected_one_by_one(point, code):
    batch = parse([{"ts": NOW_US // 1000, "value": 7}, point])
    assert batch.values == [7.0]
    assert [(r.index, r.code) for r in batch.rejected] == [(1, code)]
    assert batch.rejected[0].sample is not None and len(batch.rejected[0].sample) <= 200


def test_nan_and_infinity_reject_only_their_points():
    body = (
        b'{"points": [{"ts": 1800000000000, "value": NaN}, {"ts": 1800000000001, "value": 1},'
        b' {"ts": 1800000000002, "value": Infinity}]}'
    )
    batch = parse_json_points(body, now_us=NOW_US, limits=LIMITS)
    assert batch.values == [1.0]
    assert [(r.index, r.code) for r in batch.rejected] == [
        (0, "invalid_value"),
        (2, "invalid_value"),
    ]


def test_malformed_bodies_are_request_errors():
    with pytest.raises(AppError) as caught:
        parse_json_points(b"{not json", now_us=NOW_US, limits=LIMITS)
    assert caught.value.code == "bad_request"
    with pytest.raises(InvalidInput):
        parse_json_points(b'{"pts": []}', now_us=NOW_US, limits=LIMITS)
    with pytest.raises(PayloadTooLarge):
        parse([{"ts": NOW_US // 1000 + i, "value": i} for i in range(101)])


def test_gzip_is_decoded_and_bombs_stop_at_the_bound():
    body = orjson.dumps({"points": [{"ts": NOW_US // 1000, "value": 1}]})
    assert decode_body(gzip.compress(body), "gzip", 10_000) == body
    bomb = gzip.compress(b"0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        decode_body(bomb, "gzip", 10_000)
    with pytest.raises(AppError) as caught:
        decode_body(b"not gzip", "gzip", 10_000)
    assert caught.value.code == "bad_request"
    with pytest.raises(AppError) as caught:
        decode_body(body, "br", 10_000)
    assert caught.value.code == "unsupported_media_type"
    assert decode_body(zlib.compress(body), "deflate", 10_000) == body


def test_epoch_units_are_told_by_magnitude():
    assert epoch_to_us(1_800_000_000) == 1_800_000_000_000_000
    assert epoch_to_us(1_800_000_000.5) == 1_800_000_000_500_000
    assert epoch_to_us(1_800_000_000_000) == 1_800_000_000_000_000
    assert epoch_to_us(1_800_000_000_000_000) == 1_800_000_000_000_000
    assert epoch_to_us(1_800_000_000_000_000_123) == 1_800_000_000_000_000


def test_line_protocol_first_numeric_field_is_the_value_and_the_rest_is_meta():
    ts, value, meta = parse_line(
        'weather,location=us\\ midwest,host=a temp=82i,desc="hot, dry",ok=t 1465839830100400200', 1
    )
    assert ts == 1465839830100400200
    assert value == 82.0
    assert meta == {
        "measurement": "weather",
        "field": "temp",
        "tags": {"location": "us midwest", "host": "a"},
        "fields": {"desc": "hot, dry", "ok": True},
    }
    assert parse_line("cpu value=0.5", 1) == (None, 0.5, {"measurement": "cpu", "field": "value"})


@pytest.mark.parametrize(
    "line",
    [
        "cpu",
        "cpu ok=t",
        "cpu value=abc 1",
        "cpu value=1 notanumber",
        ",tag=1 value=1",
        "cpu,badtag value=1",
    ],
)
def test_bad_lines_raise(line):
    with pytest.raises(ValueError):
        parse_line(line, 1)


def test_line_protocol_batch_with_precision_and_partial_errors():
    body = (
        f"m v=1 {NOW_US // 1000}\n"
        "# a comment\n"
        f"m v=oops {NOW_US // 1000}\n"
        f"m v=2 {NOW_US // 1000 + 1}\n"
        f"m v=3\n"
    ).encode()
    batch = parse_line_points(body, precision="ms", now_us=NOW_US, limits=LIMITS)
    assert batch.values == [1.0, 2.0, 3.0]
    assert batch.ts_us == [NOW_US, NOW_US + 1000, NOW_US]
    assert [(r.index, r.code) for r in batch.rejected] == [(1, "invalid_line")]
    with pytest.raises(InvalidInput):
        parse_line_points(body, precision="minutes", now_us=NOW_US, limits=LIMITS)
    assert not math.isnan(batch.values[0])
