"""Parsing and validating an ingest request into columns of good points plus rejections.

Every point is checked on its own (InfluxDB-style partial writes): good points are kept,
bad ones are reported with their index, a code and a message.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from core.errors import AppError, InvalidInput, PayloadTooLarge
from core.line_protocol import PRECISION_TO_NS, parse_line

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
META_MAX_BYTES = 2048
META_MAX_KEYS = 32
SAMPLE_CHARS = 200


class BadRequest(AppError):
    code = "bad_request"


@dataclass(slots=True)
class Rejection:
    index: int
    code: str
    message: str
    sample: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


@dataclass(slots=True)
class ParsedBatch:
    """Columns of the accepted points (timestamps in µs since the epoch) and the rejections."""

    ts_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    metas: list[dict[str, Any] | None] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    total: int = 0

    def accept(self, ts_us: int, value: float, meta: dict[str, Any] | None) -> None:
        self.ts_us.append(ts_us)
        self.values.append(value)
        self.metas.append(meta)

    def reject(self, index: int, code: str, message: str, raw: Any = None) -> None:
        sample = None
        if raw is not None:
            sample = raw if isinstance(raw, str) else orjson.dumps(raw, default=str).decode()
            sample = sample[:SAMPLE_CHARS]
        self.rejected.append(Rejection(index, code, message, sample))


@dataclass(frozen=True, slots=True)
class Limits:
    max_points: int
    max_bytes: int
    max_past_s: int
    max_future_s: int


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undoes gzip/deflate with a bound on the decompressed size (gzip bombs stop early)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise AppError(
            f"Content-Encoding {encoding!r} is not supported (use gzip)",
            code="unsupported_media_type",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise BadRequest("the body is not valid gzip data") from None
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise PayloadTooLarge(
            f"the decompressed body is larger than {max_bytes} bytes",
            details={"max_bytes": max_bytes},
        )
    return out


def epoch_to_us(value: float | int) -> int:
    """Epoch number to µs, its unit told by magnitude: s, ms, µs or ns."""
    magnitude = abs(value)
    if magnitude < 1e11:
        return round(value * 1_000_000)
    if magnitude < 1e14:
        return round(value * 1_000)
    if magnitude < 1e17:
        return int(value)
    return int(value) // 1_000


def _timestamp_us(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("ts must be an ISO-8601 string or an epoch number")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("ts must be finite")
        return epoch_to_us(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError("ts is not an ISO-8601 timestamp") from None
        if parsed.tzinfo is None:
            raise ValueError("ts needs a UTC offset (e.g. 'Z' or '+00:00')")
        delta = parsed - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise ValueError("ts must be an ISO-8601 string or an epoch number")


def _check_meta(meta: Any) -> dict[str, Any] | None:
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise ValueError("meta must be an object")
    if len(meta) > META_MAX_KEYS or len(orjson.dumps(meta)) > META_MAX_BYTES:
        raise ValueError(f"meta must have at most {META_MAX_KEYS} keys and {META_MAX_BYTES} bytes")
    return meta


def _within_window(
    batch: ParsedBatch, index: int, ts_us: int, now_us: int, limits: Limits, raw: Any
) -> bool:
    if ts_us > now_us + limits.max_future_s * 1_000_000:
        batch.reject(
            index,
            "timestamp_in_future",
            f"ts is more than {limits.max_future_s} s ahead of the server clock",
            raw,
        )
        return False
    if ts_us < now_us - limits.max_past_s * 1_000_000:
        batch.reject(
            index,
            "timestamp_too_old",
            f"ts is more than {limits.max_past_s} s behind the server clock",
            raw,
        )
        return False
    return True


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # NaN/Infinity are not JSON; accept them here so only those points are rejected.
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def parse_json_points(body: bytes, *, now_us: int, limits: Limits) -> ParsedBatch:
    document = _loads(body)
    points = document.get("points") if isinstance(document, dict) else None
    if not isinstance(points, list):
        raise InvalidInput(
            'the body must be {"points": [{"ts": ..., "value": ...}, ...]}',
            details={"field": "points"},
        )
    if len(points) > limits.max_points:
        raise PayloadTooLarge(
            f"at most {limits.max_points} points per request",
            details={"max_points": limits.max_points, "points": len(points)},
        )
    batch = ParsedBatch(total=len(points))
    for index, point in enumerate(points):
        if not isinstance(point, dict):
            batch.reject(index, "invalid_point", "a point must be an object", point)
            continue
        unknown = set(point) - {"ts", "value", "meta"}
        if unknown:
            batch.reject(
                index, "invalid_point", f"unknown keys: {', '.join(sorted(unknown))}", point
            )
            continue
        value = point.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            batch.reject(index, "invalid_value", "value must be a number", point)
            continue
        value = float(value)
        if not math.isfinite(value):
            batch.reject(index, "invalid_value", "value must be finite (no NaN or Infinity)", point)
            continue
        try:
            ts_us = _timestamp_us(point.get("ts"))
        except ValueError as exc:
            batch.reject(index, "invalid_timestamp", str(exc), point)
            continue
        try:
            meta = _check_meta(point.get("meta"))
        except ValueError as exc:
            batch.reject(index, "invalid_meta", str(exc), point)
            continue
        if _within_window(batch, index, ts_us, now_us, limits, point):
            batch.accept(ts_us, value, meta)
    return batch


def parse_line_points(body: bytes, *, precision: str, now_us: int, limits: Limits) -> ParsedBatch:
    if precision not in PRECISION_TO_NS:
        raise InvalidInput(
            f"precision must be one of {', '.join(PRECISION_TO_NS)}", details={"field": "precision"}
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadRequest("line protocol must be UTF-8 text") from None
    lines = [
        (i, line)
        for i, line in enumerate(text.splitlines())
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(lines) > limits.max_points:
        raise PayloadTooLarge(
            f"at most {limits.max_points} points per request",
            details={"max_points": limits.max_points, "points": len(lines)},
        )
    batch = ParsedBatch(total=len(lines))
    scale = PRECISION_TO_NS[precision]
    for index, (_line_no, line) in enumerate(lines):
        try:
            ts_ns, value, meta = parse_line(line, scale)
        except ValueError as exc:
            batch.reject(index, "invalid_line", str(exc), line)
            continue
        if not math.isfinite(value):
            batch.reject(index, "invalid_value", "value must be finite", line)
            continue
        ts_us = now_us if ts_ns is None else ts_ns // 1_000
        try:
            checked = _check_meta(meta)
        except ValueError as exc:
            batch.reject(index, "invalid_meta", str(exc), line)
            continue
        if _within_window(batch, index, ts_us, now_us, limits, line):
            batch.accept(ts_us, value, checked)
    return batch
