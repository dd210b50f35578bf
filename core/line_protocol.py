"""InfluxDB line protocol, enough for Telegraf's HTTP output and devices that speak it.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]`` — the first numeric
field is the point's value; the measurement, tags and other fields are kept as ``meta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRECISION_TO_NS = {"ns": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass(frozen=True, slots=True)
class LineError:
    index: int
    message: str


def _split(text: str, separator: str, *, quotes: bool = False) -> list[str]:
    """Splits on an unescaped separator (and, for field sets, outside double quotes)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = in_quotes = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif quotes and char == '"':
            in_quotes = not in_quotes
            current.append(char)
        elif char == separator and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def _field_value(raw: str) -> tuple[Any, bool]:
    """(value, is_numeric) of a field value."""
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].replace('\\"', '"'), False
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, False
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, False
    if raw[-1:] in ("i", "u"):
        return int(raw[:-1]), True
    return float(raw), True


def parse_line(line: str, precision_ns: int) -> tuple[int | None, float, dict[str, Any]]:
    """(timestamp in ns or None, value, meta) of one line; raises ValueError with a reason."""
    sections = _split(line.strip(), " ", quotes=True)
    sections = [s for s in sections if s != ""]
    if len(sections) < 2 or len(sections) > 3:
        raise ValueError("expected 'measurement[,tags] fields [timestamp]'")
    key, fields_text = sections[0], sections[1]
    series = _split(key, ",")
    measurement = _unescape(series[0])
    if not measurement:
        raise ValueError("the measurement name is empty")
    tags: dict[str, str] = {}
    for tag in series[1:]:
        name, sep, tag_value = tag.partition("=")
        if not sep or not name or not tag_value:
            raise ValueError(f"bad tag {tag!r}")
        tags[_unescape(name)] = _unescape(tag_value)
    value: float | None = None
    meta_field = ""
    others: dict[str, Any] = {}
    for field in _split(fields_text, ",", quotes=True):
        name, sep, raw = field.partition("=")
        if not sep or not name or not raw:
            raise ValueError(f"bad field {field!r}")
        try:
            parsed, numeric = _field_value(raw)
        except ValueError:
            raise ValueError(f"field {_unescape(name)!r} has a bad value {raw!r}") from None
        if numeric and value is None:
            value = float(parsed)  # ints and uints arrive as int
            meta_field = _unescape(name)
        else:
            others[_unescape(name)] = parsed
    if value is None:
        raise ValueError("no numeric field")
    timestamp: int | None = None
    if len(sections) == 3:
        try:
            timestamp = int(sections[2]) * precision_ns
        except ValueError:
            raise ValueError(f"bad timestamp {sections[2]!r}") from None
    meta: dict[str, Any] = {"measurement": measurement, "field": meta_field}
    if tags:
        meta["tags"] = tags
    if others:
        meta["fields"] = others
    return timestamp, value, meta
