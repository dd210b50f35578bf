"""``?limit=`` and opaque ``?cursor=`` parameters, and the ``{items, next_cursor}`` page shape."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from quart import request

from core.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def page_limit(default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidInput(
            f"limit must be a whole number from 1 to {maximum}", details={"field": "limit"}
        )
    return int(raw)


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values), default=str)).decode().rstrip("=")


def decode_cursor(size: int) -> list[Any] | None:
    """The values of ``?cursor=`` (``size`` of them), ``None`` when absent."""
    raw = request.args.get("cursor")
    if not raw:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise InvalidInput(
            "cursor is not valid; use next_cursor from a previous page", details={"field": "cursor"}
        )
    return values


def decode_time_cursor() -> tuple[datetime, UUID] | None:
    """``?cursor=`` of a list ordered by (created_at, id): the position, ``None`` when absent."""
    values = decode_cursor(2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), UUID(values[1])
    except (TypeError, ValueError):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"}) from None


def page(
    rows: Sequence[Any],
    limit: int,
    *,
    serialise: Callable[[Any], Any],
    cursor_of: Callable[[Any], Sequence[Any]],
) -> dict[str, Any]:
    """Builds a page from ``limit + 1`` fetched rows (the extra one says there is more)."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return {
        "items": [serialise(row) for row in items],
        "next_cursor": encode_cursor(cursor_of(items[-1])) if more and items else None,
    }
