"""Client pieces that need no server: retry delays, input parsing, config files, errors."""

from __future__ import annotations

import email.utils
import json
import math
import stat
import time
from pathlib import Path

import pytest
from etp_client.config import read_config, resolve_credentials, write_config
from etp_client.errors import (
    Conflict,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    RouteNotFound,
    ServerError,
    error_from_response,
)
from etp_client.points import detect_format, encode_points, parse_csv, parse_json, parse_lines
from etp_client.transport import RetryPolicy, parse_retry_after, query_value


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=4.0)
    for attempt, cap in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 4.0)):
        delays = [policy.delay_s(attempt) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 100  # jittered
    assert all(7.0 <= policy.delay_s(1, 7.0) <= 8.0 for _ in range(100))
    assert policy.delay_s(1, 10_000) <= policy.retry_after_max_s + 1


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = parse_retry_after(later)
    assert value is not None and 28 <= value <= 31


def test_error_answers_map_to_exception_classes() -> None:
    def error(status: int, code: str, message: str = "m") -> Exception:
        body = {"error": {"code": code, "message": message, "details": {"x": 1}, "request_id": "r"}}
        return error_from_response(status, body, request_id=None, retry_after_s=2.0)

    conflict = error(409, "conflict")
    assert isinstance(conflict, Conflict) and conflict.request_id == "r"
    assert conflict.details == {"x": 1} and "409 conflict" in str(conflict)
    assert isinstance(error(429, "rate_limited"), RateLimited)
    assert type(error(404, "not_found", "sensor not found")) is NotFound
    assert isinstance(error(404, "not_found", "no such resource: /api/v1/x"), RouteNotFound)
    assert isinstance(error(405, "method_not_allowed"), MethodNotAllowed)
    plain = error_from_response(502, "<html>bad gateway</html>", request_id="q", retry_after_s=None)
    assert isinstance(plain, ServerError) and plain.request_id == "q"


def test_config_file_is_private_and_explicit_values_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_config: Path
) -> None:
    write_config({"url": "http://saved:1", "token": "etpu_saved"})
    assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated_config.parent.stat().st_mode) == 0o700
    assert read_config() == {"url": "http://saved:1", "token": "etpu_saved"}
    assert resolve_credentials().token == "etpu_saved"
    monkeypatch.setenv("ETP_TOKEN", "etpu_env")
    assert resolve_credentials().token == "etpu_env"
    resolved = resolve_credentials("http://given:2/", "etpu_arg")
    assert (resolved.url, resolved.token) == ("http://given:2", "etpu_arg")
    assert "etpu_arg" not in repr(resolved)


def test_input_formats_are_detected_and_parsed() -> None:
    csv_text = "ts,value,site\n2025-01-01T00:00:00Z,1.5,a\n1735689601,oops,\n"
    assert detect_format(csv_text) == "csv"
    points = parse_csv(csv_text)
    assert points[0] == {"ts": "2025-01-01T00:00:00Z", "value": 1.5, "meta": {"site": "a"}}
    assert points[1] == {"ts": 1735689601.0, "value": "oops"}

    assert detect_format('{"points": []}') == "json" and detect_format("m value=1 1") == "line"
    assert detect_format("x", "data.lp") == "line"
    document = json.dumps({"points": [{"ts": 1, "value": 2}]})
    assert parse_json(document) == [{"ts": 1, "value": 2}]
    assert parse_json('{"ts": 1, "value": 2}\n{"ts": 2, "value": 3}\n')[1]["value"] == 3
    assert parse_lines("# c\n\nm value=1\n") == ["m value=1"]


def test_non_finite_values_are_sent_as_literals_for_the_server_to_reject() -> None:
    body = encode_points([{"ts": 1, "value": math.nan}, {"ts": 2, "value": 1.0}])
    assert b"NaN" in body
    assert json.loads(encode_points([{"ts": 1, "value": 2.0}])) == {
        "points": [{"ts": 1, "value": 2.0}]
    }


def test_query_values() -> None:
    assert query_value(["a", "b"]) == "a,b" and query_value(True) == "true"
