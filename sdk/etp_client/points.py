"""Telemetry points: encoding ingest bodies and reading CSV, JSON and line-protocol input."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

JSON_TYPE = "application/json"
LINE_PROTOCOL_TYPE = "text/plain; charset=utf-8"
FORMATS = ("csv", "json", "line")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def timestamp(value: Any) -> str | float | int:
    """A point's ``ts`` for the wire: aware datetimes become ISO-8601, numbers stay epoch."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (e.g. datetime.now(UTC))")
        return value.isoformat()
    return value


def point(value: Any, ts: Any = None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ts": now_iso() if ts is None else timestamp(ts), "value": value}
    if meta:
        body["meta"] = dict(meta)
    return body


def encode_points(points: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON ingest body. Non-finite floats go out as the literals ``NaN``/``Infinity``
    (what a faulty device sends) so the server can reject those points one by one."""
    body = {"points": list(points)}
    if any(_non_finite(p.get("value")) for p in points):
        return json.dumps(body, allow_nan=True, default=str).encode()
    return orjson.dumps(body, default=str)


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def detect_format(text: str, name: str | None = None) -> str:
    """``csv``, ``json`` or ``line`` from a file name, else from the content."""
    suffix = (name or "").rsplit(".", 1)[-1].lower() if name and "." in name else ""
    if suffix in ("csv", "tsv"):
        return "csv"
    if suffix in ("json", "ndjson", "jsonl"):
        return "json"
    if suffix in ("lp", "line", "influx"):
        return "line"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "json"
    first = stripped.splitlines()[0] if stripped else ""
    header = first.replace(" ", "").lower()
    if header.startswith(("ts,", "time,", "timestamp,")) or (first.count(",") and "=" not in first):
        return "csv"
    return "line"


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows ``ts,value[,other...]`` with a header; other columns go into ``meta``."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return []
    names = [n.strip() for n in reader.fieldnames]
    ts_key = next((n for n in names if n.lower() in ("ts", "time", "timestamp")), None)
    value_key = next((n for n in names if n.lower() == "value"), None)
    if ts_key is None or value_key is None:
        raise ValueError("CSV needs a header with 'ts' (or 'time') and 'value' columns")
    out: list[dict[str, Any]] = []
    for row in reader:
        clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
        raw_ts = clean.pop(ts_key)
        raw_value = clean.pop(value_key)
        meta = {k: v for k, v in clean.items() if v not in (None, "")}
        out.append(point(_number(raw_value), _csv_ts(raw_ts), meta))
    return out


def _csv_ts(raw: str) -> str | float:
    try:
        return float(raw)
    except ValueError:
        return raw


def _number(raw: str) -> float | str:
    try:
        return float(raw)
    except ValueError:
        return raw  # sent as is: the server rejects that point, the others go in


def parse_json(text: str) -> list[dict[str, Any]]:
    """``{"points": [...]}``, a JSON array of points, or one point per line (NDJSON)."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        document = json.loads(stripped)
    except ValueError:
        return [json.loads(line) for line in stripped.splitlines() if line.strip()]
    if isinstance(document, dict) and "points" in document:
        document = document["points"]
    if isinstance(document, dict):
        return [document]
    if not isinstance(document, list):
        raise ValueError('JSON input must be {"points": [...]}, a list of points, or NDJSON')
    return document


def parse_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
