"""orjson with the project's conventions (UUIDs, datetimes with offset, numpy-free)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID subclass, which orjson skips
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _std_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _default(value)


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
    # Integers beyond 64 bits (valid JSON, kept exactly by jsonb): the standard library writes
    # them; orjson, which reads them back, turns them into floats.
    return json.dumps(
        value, default=_std_default, ensure_ascii=False, separators=(",", ":")
    ).encode()


loads = orjson.loads
