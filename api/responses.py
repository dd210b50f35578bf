"""Serialising responses with orjson."""

from __future__ import annotations

from typing import Any

from quart import Response

from core.json import dumps


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(dumps(body), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
