"""Per-request helpers for handlers: the caller, the audit context, project authorization."""

from __future__ import annotations

from uuid import UUID

from quart import g

from core.errors import InvalidInput, Unauthenticated
from core.principal import AuditContext, Principal


def principal() -> Principal:
    caller = getattr(g, "principal", None)
    if caller is None:
        raise Unauthenticated("sign in or send an API token")
    return caller


def audit_context() -> AuditContext:
    caller = getattr(g, "principal", None)
    return AuditContext(
        actor_id=caller.user_id if caller else None, request_id=getattr(g, "request_id", None)
    )


def project_role() -> str:
    """The caller's role in the route's project (checked before the handler ran)."""
    role = getattr(g, "project_role", None)
    assert role is not None, "only project(action) routes have a project role"
    return role


def project_id() -> UUID:
    value = getattr(g, "project_id", None)
    assert value is not None, "only project(action) routes have a project"
    return value


def parse_uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID", details={"field": field}) from None
