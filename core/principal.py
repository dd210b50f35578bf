"""Who is calling: the authenticated user and how they authenticated."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    email: str
    display_name: str
    via: str  # "session" (browser cookie) or "token" (personal API token)
    session_id: UUID | None = None
    token_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every audited change records about its author."""

    actor_id: UUID | None
    request_id: str | None
