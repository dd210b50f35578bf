"""The domain error tree. Each error has a stable ``code``; the api maps codes to HTTP statuses."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "internal"

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class InvalidInput(AppError):
    code = "invalid_input"


class Unauthenticated(AppError):
    code = "unauthenticated"


class Forbidden(AppError):
    code = "forbidden"


class NotFound(AppError):
    code = "not_found"


class Conflict(AppError):
    code = "conflict"


class PayloadTooLarge(AppError):
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    code = "unsupported_media_type"


class RateLimited(AppError):
    code = "rate_limited"

    def __init__(
        self, message: str, *, retry_after_s: float, details: dict[str, Any] | None = None
    ):
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class Unavailable(AppError):
    """A dependency (database, Ray, Redis) cannot serve now; the client should retry."""

    code = "unavailable"

    def __init__(
        self, message: str, *, retry_after_s: float = 1.0, details: dict[str, Any] | None = None
    ):
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class ConfigError(AppError):
    """The configuration cannot work; raised at start-up and reported as one line."""

    code = "config_error"
