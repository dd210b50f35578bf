"""Raw→physical conversion: validation, compiled converters, and which profile applies when."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.conversion import (
    MAX_TABLE_POINTS,
    NO_PROFILE,
    STATUS_NO_PROFILE,
    STATUS_NON_FINITE,
    STATUS_OK,
    STATUS_OUT_OF_RANGE,
    compile_profile,
    inverse_linear,
    profile_applying_at,
    validate_profile,
)
from core.errors import InvalidInput

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
any_x = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def tables(draw: st.DrawFn, min_size: int = 2, max_size: int = 40) -> list[list[float]]:
    xs = sorted(draw(st.lists(values, min_size=min_size, max_size=max_size, unique=True)))
    ys = draw(st.lists(values, min_size=len(xs), max_size=len(xs)))
    return [[x, y] for x, y in zip(xs, ys, strict=True)]


@st.composite
def profiles(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["linear", "polynomial", "table"]))
    if kind == "linear":
        return kind, {"a": draw(values), "b": draw(values)}
    if kind == "polynomial":
        return kind, {"coefficients": draw(st.lists(values, min_size=1, max_size=10))}
    mode = draw(st.sampled_from(["clamp", "reject"]))
    return kind, {"points": draw(tables()), "out_of_range": mode}


# Table -------------------------------------------------------------------------------------


@given(tables(), st.sampled_from(["clamp", "reject"]))
def test_table_reproduces_its_own_points_exactly(points, mode):
    converter = compile_profile("table", {"points": points, "out_of_range": mode})
    for x, y in points:
        assert converter.convert(x) == (y, STATUS_OK)


@given(tables(), st.floats(min_value=0, max_value=1))
def test_table_interpolation_stays_between_neighbouring_points(points, fraction):
    x = points[0][0] + fraction * (points[-1][0] - points[0][0])
    x = min(max(x, points[0][0]), points[-1][0])
    y, status = compile_profile("table", {"points": points}).convert(x)
    assert status == STATUS_OK and y is not None
    assert any(
        x0 <= x <= x1 and min(y0, y1) <= y <= max(y0, y1) for (x0, y0), (x1, y1) in pairwise(points)
    )


@given(tables(), st.floats(min_value=1, max_value=1e9), st.booleans())
def test_table_clamp_gives_the_endpoint_outside_the_range(points, distance, below):
    converter = compile_profile("table", {"points": points, "out_of_range": "clamp"})
    x = points[0][0] - distance if below else points[-1][0] + distance
    expected = points[0][1] if below else points[-1][1]
    assert converter.convert(x) == (expected, STATUS_OK)
    assert converter.convert(-math.inf if below else math.inf) == (expected, STATUS_OK)


@given(tables(), st.floats(min_value=1, max_value=1e9), st.booleans())
def test_table_reject_gives_no_value_outside_the_range(points, distance, below):
    converter = compile_profile("table", {"points": points, "out_of_range": "reject"})
    x = points[0][0] - distance if below else points[-1][0] + distance
    assert converter.convert(x) == (None, STATUS_OUT_OF_RANGE)
    assert converter.convert(math.inf) == (None, STATUS_OUT_OF_RANGE)


def test_table_interpolates_linearly_and_defaults_to_clamp():
    converter = compile_profile("table", {"points": [[0, 0], [10, 100], [20, 0]]})
    assert converter.convert(2.5) == (25.0, STATUS_OK)
    assert converter.convert(15) == (50.0, STATUS_OK)
    assert converter.convert(-5) == (0.0, STATUS_OK)
    assert converter.convert(math.nan) == (None, STATUS_NON_FINITE)


# Linear and polynomial ---------------------------------------------------------------------

nonzero_a = st.floats(min_value=1e-3, max_value=1e3) | st.floats(min_value=-1e3, max_value=-1e-3)


@given(nonzero_a, values, values)
def test_linear_inverse_round_trips(a, b, x):
    y, status = compile_profile("linear", {"a": a, "b": b}).convert(x)
    assert status == STATUS_OK and y is not None
    # y - b cancels digits when |b| dominates |a*x|: the error scales with |x| + |b/a|.
    tolerance = 1e-12 * (abs(x) + abs(b / a)) + 1e-300
    assert math.isclose(inverse_linear(a, b, y), x, rel_tol=0, abs_tol=tolerance)


def test_inverse_linear_refuses_a_zero_slope():
    with pytest.raises(InvalidInput, match="non-zero") as caught:
        inverse_linear(0.0, 1.0, 5.0)
    assert caught.value.details["field"] == "a"


@given(
    st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=1, max_size=10),
    st.floats(min_value=-10, max_value=10),
)
def test_polynomial_equals_the_naive_sum(coefficients, x):
    y, status = compile_profile("polynomial", {"coefficients": coefficients}).convert(x)
    naive = sum(c * x**k for k, c in enumerate(coefficients))
    scale = sum(abs(c) * abs(x) ** k for k, c in enumerate(coefficients))
    assert status == STATUS_OK and y is not None
    assert math.isclose(y, naive, rel_tol=0, abs_tol=1e-12 * scale + 1e-300)


def test_polynomial_of_degree_nine_is_accepted_and_exact_on_integers():
    converter = compile_profile("polynomial", {"coefficients": [1] * 10})
    assert converter.convert(2.0) == (1023.0, STATUS_OK)


@pytest.mark.parametrize(
    ("kind", "payload", "x"),
    [
        ("linear", {"a": 1e308, "b": 0}, 1e10),
        ("polynomial", {"coefficients": [0, 0, 1]}, 1e200),
        ("linear", {"a": 1, "b": 0}, math.nan),
    ],
)
def test_overflow_gives_no_value_and_a_non_finite_status(kind, payload, x):
    assert compile_profile(kind, payload).convert(x) == (None, STATUS_NON_FINITE)


def test_no_profile_passes_the_raw_value_through_with_its_status():
    assert NO_PROFILE.convert(3.5) == (3.5, STATUS_NO_PROFILE)
    assert NO_PROFILE.convert_many([1.0, 2.0]) == ([1.0, 2.0], [STATUS_NO_PROFILE] * 2)


@given(profiles(), st.lists(any_x | values, max_size=50))
def test_convert_many_equals_per_point_convert(profile, xs):
    converter = compile_profile(*profile)
    physical, statuses = converter.convert_many(xs)
    assert list(zip(physical, statuses, strict=True)) == [converter.convert(x) for x in xs]


# Validation --------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("kind", "payload", "fragment", "field"),
    [
        ("spline", {}, "unknown kind 'spline'", "kind"),
        ("linear", [1, 2], "payload must be an object", "payload"),
        ("linear", {"a": NAN, "b": 0}, "a must be a finite number (got nan)", "a"),
        ("linear", {"a": 1, "b": INF}, "b must be a finite number (got inf)", "b"),
        ("linear", {"a": -INF, "b": 0}, "a must be a finite number (got -inf)", "a"),
        ("linear", {"a": True, "b": 0}, "a must be a finite number (got bool)", "a"),
        ("linear", {"a": "1.5", "b": 0}, "a must be a finite number (got str)", "a"),
        ("linear", {"a": None, "b": 0}, "a must be a finite number (got NoneType)", "a"),
        ("linear", {"a": 10**400, "b": 0}, "a must be a finite number", "a"),
        ("linear", {"a": 1}, "b is required", "b"),
        ("linear", {"a": 1, "b": 0, "c": 2}, "unknown key 'c'", "c"),
        ("polynomial", {"coefficients": [1.0] * 11}, "coefficients: at most 10 (degree 9)", None),
        ("polynomial", {"coefficients": []}, "coefficients: at least 1", "coefficients"),
        ("polynomial", {"coefficients": "123"}, "coefficients must be a list", "coefficients"),
        ("polynomial", {"coefficients": [1, NAN]}, "coefficients[1] must be a finite", None),
        ("polynomial", {"coefficients": [1, False]}, "(got bool)", "coefficients[1]"),
        ("table", {"points": [[0, 0]]}, "points: at least 2", "points"),
        ("table", {"points": {"0": 1}}, "points must be a list", "points"),
        ("table", {"points": [[0, 0], [1]]}, "points[1] must be a pair [x, y]", None),
        ("table", {"points": [[0, 0], "ab"]}, "points[1] must be a pair [x, y]", None),
        ("table", {"points": [[0, 0], [1, NAN]]}, "points[1]: y must be a finite number", None),
        ("table", {"points": [[True, 0], [1, 1]]}, "points[0]: x must be a finite", None),
        (
            "table",
            {"points": [[0, 0], [2, 1], [1, 2]]},
            "points[2]: x must be greater than points[1] x (2.0)",
            "points[2]",
        ),
        (
            "table",
            {"points": [[0, 0], [1, 1], [1, 2]]},
            "points[2]: x must be greater than points[1] x (1.0)",
            "points[2]",
        ),
        (
            "table",
            {"points": [[0, 0], [1, 1]], "out_of_range": "wrap"},
            "must be one of",
            "out_of_range",
        ),
        ("table", {"points": [[-1e308, 0], [1e308, 1]]}, "too wide a range", "points"),
        ("table", {"points": [[0, 0], [1, 1]], "extra": 1}, "unknown key 'extra'", "extra"),
    ],
)
def test_validation_refuses_with_a_precise_message(kind, payload, fragment, field):
    with pytest.raises(InvalidInput) as caught:
        validate_profile(kind, payload)
    assert fragment in caught.value.message
    assert caught.value.code == "invalid_input"
    expected_field = field or fragment.split(" ")[0].rstrip(":")
    assert caught.value.details["field"] == expected_field


def test_validation_refuses_too_many_table_points():
    points = [[float(i), 0.0] for i in range(MAX_TABLE_POINTS + 1)]
    with pytest.raises(InvalidInput, match=f"points: at most {MAX_TABLE_POINTS}"):
        validate_profile("table", {"points": points})
    validate_profile("table", {"points": points[:MAX_TABLE_POINTS]})


def test_validation_normalises_to_floats_and_fills_defaults():
    assert validate_profile("linear", {"a": 2, "b": -1}) == {"a": 2.0, "b": -1.0}
    table = validate_profile("table", {"points": [(0, 1), (2, 3)]})
    assert table == {"points": [[0.0, 1.0], [2.0, 3.0]], "out_of_range": "clamp"}
    assert all(type(v) is float for point in table["points"] for v in point)


# Which profile applies ---------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _profile(
    version: int, status: str, valid_from: datetime | None = None, valid_to: datetime | None = None
) -> dict[str, Any]:
    return {
        "id": f"p{version}",
        "version": version,
        "status": status,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "activated_at": None,
    }


def _version(profiles: list[dict[str, Any]], ts: datetime) -> int | None:
    found = profile_applying_at(profiles, ts)
    return None if found is None else found["version"]


def test_a_draft_never_applies():
    assert _version([_profile(1, "draft")], T0) is None
    assert _version([_profile(1, "active"), _profile(2, "draft", T0 - HOUR)], T0) == 1


def test_a_scheduled_profile_applies_from_its_valid_from():
    profiles = [_profile(1, "active"), _profile(2, "scheduled", T0)]
    assert _version(profiles, T0 - timedelta(microseconds=1)) == 1
    assert _version(profiles, T0) == 2
    assert _version(profiles, T0 + HOUR) == 2


def test_the_newer_version_wins_where_windows_overlap_whatever_the_order():
    profiles = [_profile(1, "deprecated", T0, T0 + 2 * HOUR), _profile(2, "active", T0 + HOUR)]
    for _ in range(3):
        random.shuffle(profiles)
        assert _version(profiles, T0 + 30 * timedelta(minutes=1)) == 1
        assert _version(profiles, T0 + 90 * timedelta(minutes=1)) == 2
        assert _version(profiles, T0 + 3 * HOUR) == 2


def test_before_any_valid_from_nothing_applies():
    profiles = [_profile(1, "active", T0), _profile(2, "scheduled", T0 + HOUR)]
    assert _version(profiles, T0 - HOUR) is None
    assert _version([], T0) is None


def test_valid_to_is_exclusive():
    profiles = [_profile(1, "deprecated", T0, T0 + HOUR)]
    assert _version(profiles, T0 + HOUR - timedelta(microseconds=1)) == 1
    assert _version(profiles, T0 + HOUR) is None


def test_a_naive_timestamp_is_refused():
    with pytest.raises(InvalidInput, match="timezone-aware"):
        profile_applying_at([_profile(1, "active")], datetime(2025, 1, 1))
