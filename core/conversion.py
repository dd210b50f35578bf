"""Raw→physical conversion of sensor values: profile validation, compiled converters, selection.

A conversion profile is stored as ``kind`` + ``payload`` (JSON). ``validate_profile`` checks and
normalises a payload; ``compile_profile`` turns it into a frozen ``Converter`` whose
``convert_many`` is the hot path of the sensor actor. Standard library only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import InvalidInput

KIND_LINEAR = "linear"
KIND_POLYNOMIAL = "polynomial"
KIND_TABLE = "table"
KINDS = (KIND_LINEAR, KIND_POLYNOMIAL, KIND_TABLE)

STATUS_OK = "ok"
STATUS_OUT_OF_RANGE = "out_of_range"
STATUS_NO_PROFILE = "no_profile"
STATUS_NON_FINITE = "non_finite"

OUT_OF_RANGE_CLAMP = "clamp"
OUT_OF_RANGE_REJECT = "reject"
OUT_OF_RANGE_MODES = (OUT_OF_RANGE_CLAMP, OUT_OF_RANGE_REJECT)

MAX_COEFFICIENTS = 10  # degree 9
MIN_TABLE_POINTS = 2
MAX_TABLE_POINTS = 10_000


# Validation --------------------------------------------------------------------------------


def _invalid(message: str, field: str, **extra: Any) -> InvalidInput:
    return InvalidInput(message, details={"field": field, **extra})


def _number(value: object, field: str, label: str | None = None) -> float:
    """``value`` as a finite float; bools, strings, NaN and ±inf are refused."""
    label = label or field
    if isinstance(value, bool) or not isinstance(value, int | float):
        got = type(value).__name__
        raise _invalid(f"{label} must be a finite number (got {got})", field)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        raise _invalid(f"{label} must be a finite number (got a too large int)", field) from None
    if not math.isfinite(number):
        raise _invalid(f"{label} must be a finite number (got {number})", field)
    return number


def _list(value: object, field: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise _invalid(f"{field} must be a list (got {type(value).__name__})", field)
    return value


def _check_keys(payload: Mapping[str, object], required: set[str], optional: set[str]) -> None:
    unknown = sorted(str(key) for key in payload if key not in required | optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise _invalid(
            f"unknown key {unknown[0]!r} (allowed: {allowed})", unknown[0], unknown=unknown
        )
    for key in sorted(required):
        if key not in payload:
            raise _invalid(f"{key} is required", key)


def _validate_linear(payload: Mapping[str, object]) -> dict[str, Any]:
    _check_keys(payload, {"a", "b"}, set())
    return {"a": _number(payload["a"], "a"), "b": _number(payload["b"], "b")}


def _validate_polynomial(payload: Mapping[str, object]) -> dict[str, Any]:
    _check_keys(payload, {"coefficients"}, set())
    raw = _list(payload["coefficients"], "coefficients")
    if not raw:
        raise _invalid("coefficients: at least 1 required", "coefficients")
    if len(raw) > MAX_COEFFICIENTS:
        raise _invalid(
            f"coefficients: at most {MAX_COEFFICIENTS} (degree {MAX_COEFFICIENTS - 1})",
            "coefficients",
            max=MAX_COEFFICIENTS,
        )
    return {"coefficients": [_number(c, f"coefficients[{i}]") for i, c in enumerate(raw)]}


def _validate_table(payload: Mapping[str, object]) -> dict[str, Any]:
    _check_keys(payload, {"points"}, {"out_of_range"})
    mode = payload.get("out_of_range", OUT_OF_RANGE_CLAMP)
    if mode not in OUT_OF_RANGE_MODES:
        raise _invalid(
            "out_of_range must be one of 'clamp', 'reject'",
            "out_of_range",
            allowed=["clamp", "reject"],
        )
    raw = _list(payload["points"], "points")
    if len(raw) < MIN_TABLE_POINTS:
        raise _invalid(f"points: at least {MIN_TABLE_POINTS} required", "points")
    if len(raw) > MAX_TABLE_POINTS:
        raise _invalid(f"points: at most {MAX_TABLE_POINTS}", "points", max=MAX_TABLE_POINTS)
    points: list[list[float]] = []
    for i, point in enumerate(raw):
        field = f"points[{i}]"
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise _invalid(f"{field} must be a pair [x, y]", field)
        x = _number(point[0], field, f"{field}: x")
        y = _number(point[1], field, f"{field}: y")
        if points and x <= points[-1][0]:
            previous = points[-1][0]
            raise _invalid(f"{field}: x must be greater than points[{i - 1}] x ({previous})", field)
        points.append([x, y])
    # Interpolation subtracts values; a span beyond the float range would overflow to inf.
    ys = [y for _, y in points]
    if not math.isfinite(points[-1][0] - points[0][0]) or not math.isfinite(max(ys) - min(ys)):
        raise _invalid("points: values span too wide a range to interpolate", "points")
    return {"points": points, "out_of_range": mode}


_VALIDATORS = {
    KIND_LINEAR: _validate_linear,
    KIND_POLYNOMIAL: _validate_polynomial,
    KIND_TABLE: _validate_table,
}


def validate_profile(kind: str, payload: object) -> dict[str, Any]:
    """Check a profile strictly and return its normalised payload (floats, defaults filled)."""
    validator = _VALIDATORS.get(kind) if isinstance(kind, str) else None
    if validator is None:
        raise _invalid(
            f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}",
            "kind",
            allowed=list(KINDS),
        )
    if not isinstance(payload, Mapping):
        raise _invalid(f"payload must be an object (got {type(payload).__name__})", "payload")
    return validator(payload)


# Converters --------------------------------------------------------------------------------


class Converter(ABC):
    """A compiled profile: ``convert_many`` is the batch hot path; ``convert`` wraps it."""

    __slots__ = ()
    kind: str

    @abstractmethod
    def convert_many(self, values: Sequence[float]) -> tuple[list[float | None], list[str]]:
        """Physical values (None when there is none) and statuses, one per raw value."""

    def convert(self, x: float) -> tuple[float | None, str]:
        """(physical value, conversion status) of one raw value."""
        physical, statuses = self.convert_many((x,))
        return physical[0], statuses[0]


@dataclass(frozen=True, slots=True)
class NoProfileConverter(Converter):
    """Used when a sensor has no applicable profile.

    The physical value is the raw value (so charts of physical values still show the data),
    and the status ``no_profile`` records that no conversion was applied.
    """

    kind: str = "none"

    def convert_many(self, values: Sequence[float]) -> tuple[list[float | None], list[str]]:
        return list(values), [STATUS_NO_PROFILE] * len(values)


@dataclass(frozen=True, slots=True)
class LinearConverter(Converter):
    a: float
    b: float
    kind: str = KIND_LINEAR

    def convert_many(self, values: Sequence[float]) -> tuple[list[float | None], list[str]]:
        a, b, isfinite = self.a, self.b, math.isfinite
        physical: list[float | None] = []
        statuses: list[str] = []
        for x in values:
            y = a * x + b
            if isfinite(y):
                physical.append(y)
                statuses.append(STATUS_OK)
            else:
                physical.append(None)
                statuses.append(STATUS_NON_FINITE)
        return physical, statuses


@dataclass(frozen=True, slots=True)
class PolynomialConverter(Converter):
    coefficients: tuple[float, ...]  # c0, c1, ..., cn
    kind: str = KIND_POLYNOMIAL

    def convert_many(self, values: Sequence[float]) -> tuple[list[float | None], list[str]]:
        highest, *rest = reversed(self.coefficients)
        isfinite = math.isfinite
        physical: list[float | None] = []
        statuses: list[str] = []
        for x in values:
            y = highest
            for c in rest:  # Horner
                y = y * x + c
            if isfinite(y):
                physical.append(y)
                statuses.append(STATUS_OK)
            else:
                physical.append(None)
                statuses.append(STATUS_NON_FINITE)
        return physical, statuses


@dataclass(frozen=True, slots=True)
class TableConverter(Converter):
    xs: tuple[float, ...]  # strictly increasing
    ys: tuple[float, ...]
    reject_out_of_range: bool
    kind: str = KIND_TABLE

    def convert_many(self, values: Sequence[float]) -> tuple[list[float | None], list[str]]:
        xs, ys, n = self.xs, self.ys, len(self.xs)
        x_first, x_last, y_first, y_last = xs[0], xs[-1], ys[0], ys[-1]
        reject, isnan = self.reject_out_of_range, math.isnan
        physical: list[float | None] = []
        statuses: list[str] = []
        for x in values:
            if x_first <= x <= x_last:
                i = bisect_right(xs, x)  # xs[i - 1] <= x < xs[i]
                if i == n:
                    physical.append(y_last)
                else:
                    x0, y0, y1 = xs[i - 1], ys[i - 1], ys[i]
                    y = y0 + (x - x0) / (xs[i] - x0) * (y1 - y0)
                    # Rounding can step an ulp past a neighbour; keep y inside the segment.
                    lo, hi = (y0, y1) if y0 <= y1 else (y1, y0)
                    physical.append(lo if y < lo else hi if y > hi else y)
                statuses.append(STATUS_OK)
            elif isnan(x):
                physical.append(None)
                statuses.append(STATUS_NON_FINITE)
            elif reject:
                physical.append(None)
                statuses.append(STATUS_OUT_OF_RANGE)
            else:
                physical.append(y_first if x < x_first else y_last)
                statuses.append(STATUS_OK)
        return physical, statuses


NO_PROFILE: Converter = NoProfileConverter()


def compile_profile(kind: str, payload: object) -> Converter:
    """Validate a profile and build its converter."""
    clean = validate_profile(kind, payload)
    if kind == KIND_LINEAR:
        return LinearConverter(a=clean["a"], b=clean["b"])
    if kind == KIND_POLYNOMIAL:
        return PolynomialConverter(coefficients=tuple(clean["coefficients"]))
    return TableConverter(
        xs=tuple(x for x, _ in clean["points"]),
        ys=tuple(y for _, y in clean["points"]),
        reject_out_of_range=clean["out_of_range"] == OUT_OF_RANGE_REJECT,
    )


def inverse_linear(a: float, b: float, y: float) -> float:
    """The raw value x with a*x + b == y."""
    if a == 0:
        raise _invalid("a must be non-zero to invert a linear profile", "a")
    return (y - b) / a


# Selection ---------------------------------------------------------------------------------


def profile_applying_at(
    profiles: Iterable[Mapping[str, Any]], ts: datetime
) -> Mapping[str, Any] | None:
    """The profile record that converts a point taken at ``ts``, or None.

    Rule: drafts never apply. Among the other profiles (active, scheduled, deprecated), those
    whose window holds ``ts`` are candidates: ``valid_from <= ts`` (None means since forever)
    and ``ts < valid_to`` (None means open-ended; ``valid_to`` is exclusive). The candidate with
    the highest ``version`` wins, so a newer profile overrides an older one where they overlap.
    ``activated_at`` is not consulted: the window alone decides.
    """
    if ts.utcoffset() is None:
        raise _invalid("ts must be timezone-aware", "ts")
    best: Mapping[str, Any] | None = None
    for profile in profiles:
        if profile["status"] == "draft":
            continue
        valid_from, valid_to = profile["valid_from"], profile["valid_to"]
        if valid_from is not None and ts < valid_from:
            continue
        if valid_to is not None and ts >= valid_to:
            continue
        if best is None or profile["version"] > best["version"]:
            best = profile
    return best
