"""The one table from domain error codes to HTTP statuses, and the one JSON error shape."""

from __future__ import annotations

import logging
import math
from typing import Any

from quart import Quart, Response, g, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from core.errors import AppError, RateLimited, Unavailable
from core.json import dumps

log = logging.getLogger("etp.api")

STATUS_BY_CODE: dict[str, int] = {
    "invalid_input": 422,
    "bad_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "unavailable": 503,
    "config_error": 500,
    "internal": 500,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": getattr(g, "request_id", None),
        }
    }
    response = Response(dumps(body), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def app_error_response(exc: AppError) -> Response:
    status = STATUS_BY_CODE.get(exc.code, 400 if exc.code.startswith("invalid") else 500)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return error_response(status, exc.code, exc.message, exc.details, headers)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(AppError)
    async def on_app_error(exc: AppError) -> Response:
        if exc.code in ("internal", "config_error"):
            log.error("internal error", exc_info=exc)
        return app_error_response(exc)

    @app.errorhandler(RequestSchemaValidationError)
    async def on_validation_error(exc: RequestSchemaValidationError) -> Response:
        details: dict[str, Any] = {}
        errors = getattr(exc.validation_error, "errors", None)
        if callable(errors):
            details["fields"] = [
                {"loc": [str(p) for p in err.get("loc", ())], "message": err.get("msg", "")}
                for err in errors(include_url=False, include_input=False)
            ]
        else:
            details["reason"] = str(exc.validation_error)
        return error_response(422, "invalid_input", "the request body is not valid", details)

    @app.errorhandler(HTTPException)
    async def on_http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "internal" if status >= 500 else "bad_request")
        message = {
            404: f"no such resource: {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
        }.get(status, exc.description or exc.name)
        response = error_response(status, code, message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    async def on_unexpected(exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal", "an internal error occurred; quote the request id")
