"""Every route declares who may call it; a route without a declaration is refused (fail closed).

Kinds:
- ``public``: anyone (health, docs, login, register, ingest's own token check).
- ``user``: any authenticated user, nothing project-specific.
- ``project(action)``: an authenticated user whose role in the object's project allows
  ``action`` (the role matrix lives in ``core.authz``); the handler resolves the project and
  calls ``require_project``.
- ``sensor``: a sensor token (ingest only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from quart import Quart

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str
    action: str | None = None


def _declare(policy: Policy) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        fn.etp_policy = policy  # type: ignore[attr-defined]
        return fn

    return decorate


def public(fn: F) -> F:
    return _declare(Policy("public"))(fn)


def user(fn: F) -> F:
    return _declare(Policy("user"))(fn)


def sensor(fn: F) -> F:
    return _declare(Policy("sensor"))(fn)


def project(action: str) -> Callable[[F], F]:
    return _declare(Policy("project", action))


# Routes that libraries register (quart-schema's OpenAPI document and docs page).
LIBRARY_PUBLIC_ENDPOINTS = frozenset({"openapi", "swagger_ui"})


def endpoint_policy(app: Quart, endpoint: str) -> Policy | None:
    """The declared policy of an endpoint, ``None`` when it declares none (refused)."""
    if endpoint in LIBRARY_PUBLIC_ENDPOINTS:
        return Policy("public")
    return getattr(app.view_functions.get(endpoint), "etp_policy", None)
