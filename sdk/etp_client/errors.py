"""Exceptions raised by the client: one per API error code, all carrying what the server said."""

from __future__ import annotations

from typing import Any

ROUTE_MISSING_PREFIX = "no such resource:"


class EtpError(Exception):
    """An error answer from the ETP API (or no answer at all: ``status`` is then ``None``)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details or {}
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        where = f" [{self.status} {self.code}]" if self.status else f" [{self.code}]"
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.message}{where}{rid}"


class ConnectionFailed(EtpError):
    """The server could not be reached (after the retries)."""


class BadRequest(EtpError):
    pass


class InvalidInput(BadRequest):
    pass


class Unauthenticated(EtpError):
    pass


class Forbidden(EtpError):
    pass


class NotFound(EtpError):
    pass


class RouteNotFound(NotFound):
    """The server has no such route at all (an older server, or a feature not deployed)."""


class MethodNotAllowed(EtpError):
    """The route exists, but not for this method (a server without this feature)."""


class Conflict(EtpError):
    pass


class PayloadTooLarge(EtpError):
    pass


class UnsupportedMediaType(EtpError):
    pass


class RateLimited(EtpError):
    pass


class Unavailable(EtpError):
    pass


class ServerError(EtpError):
    pass


_BY_CODE: dict[str, type[EtpError]] = {
    "bad_request": BadRequest,
    "invalid_input": InvalidInput,
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "method_not_allowed": MethodNotAllowed,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
}

_BY_STATUS: dict[int, type[EtpError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    429: RateLimited,
    503: Unavailable,
}


def error_from_response(
    status: int, body: Any, *, request_id: str | None, retry_after_s: float | None
) -> EtpError:
    """Builds the exception for an error answer (the API's JSON shape, or anything else)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or f"HTTP {status}")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        request_id = error.get("request_id") or request_id
    else:
        code, message, details = f"http_{status}", f"HTTP {status}", {}
        if isinstance(body, str) and body.strip():
            message = f"HTTP {status}: {body.strip()[:200]}"
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else EtpError
    if cls is NotFound and message.startswith(ROUTE_MISSING_PREFIX):
        cls = RouteNotFound
    return cls(
        message,
        code=code,
        status=status,
        request_id=request_id,
        details=details,
        retry_after_s=retry_after_s,
    )
