"""Projects and membership: the rules (owners manage members; the last owner stays)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from core.authz import ROLES, check_role
from core.errors import Conflict, InvalidInput, NotFound
from core.principal import AuditContext, Principal
from core.security import normalise_email
from core.stores import audit as audit_store
from core.stores import projects as store
from core.stores import users as users_store

NAME_MAX = 200
DESCRIPTION_MAX = 10_000


def _name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise InvalidInput(f"name must have 1 to {NAME_MAX} characters", details={"field": "name"})
    return value


def _description(value: str) -> str:
    if len(value) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"description must have at most {DESCRIPTION_MAX} characters",
            details={"field": "description"},
        )
    return value


def _role(value: str) -> str:
    if value not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", details={"field": "role"})
    return value


async def require_project_role(
    conn: asyncpg.Connection, *, project_id: UUID, principal: Principal, action: str
) -> str:
    """The caller's role if it allows ``action``; 404 for non-members, 403 for weak roles."""
    role = await store.fetch_role(conn, project_id=project_id, user_id=principal.user_id)
    return check_role(role, action)


async def create_project(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    name: str,
    description: str,
    audit: AuditContext,
) -> dict[str, Any]:
    async with conn.transaction():
        row = await store.insert_project(
            conn,
            name=_name(name),
            description=_description(description),
            created_by=principal.user_id,
        )
        await store.insert_member(
            conn, project_id=row["id"], user_id=principal.user_id, role="owner"
        )
        await audit_store.insert_audit_event(
            conn,
            project_id=row["id"],
            actor_id=principal.user_id,
            actor_role="owner",
            action="project.created",
            entity_type="project",
            entity_id=row["id"],
            after={"name": row["name"]},
            request_id=audit.request_id,
        )
    return {**dict(row), "role": "owner"}


async def update_project(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    role: str,
    changes: dict[str, Any],
    audit: AuditContext,
) -> asyncpg.Record:
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = _name(changes["name"])
    if "description" in changes:
        clean["description"] = _description(changes["description"])
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT name, description FROM projects WHERE id = $1", project_id
        )
        row = await store.update_project(conn, project_id=project_id, changes=clean)
        if row is None or before is None:
            raise NotFound("project not found")
        await audit_store.insert_audit_event(
            conn,
            project_id=project_id,
            actor_id=audit.actor_id,
            actor_role=role,
            action="project.updated",
            entity_type="project",
            entity_id=project_id,
            before=dict(before),
            after=clean,
            request_id=audit.request_id,
        )
    return row


async def delete_project(
    conn: asyncpg.Connection, *, project_id: UUID, role: str, audit: AuditContext
) -> None:
    async with conn.transaction():
        running = await conn.fetchval(
            "SELECT count(*) FROM capture_sessions WHERE project_id = $1 AND status = 'running'",
            project_id,
        )
        if running:
            raise Conflict(
                "stop the project's running capture sessions before deleting it",
                details={"running_capture_sessions": running},
            )
        if not await store.delete_project(conn, project_id=project_id):
            raise NotFound("project not found")
        # The project's own audit rows go with it; this record survives (project_id NULL).
        await audit_store.insert_audit_event(
            conn,
            project_id=None,
            actor_id=audit.actor_id,
            actor_role=role,
            action="project.deleted",
            entity_type="project",
            entity_id=project_id,
            request_id=audit.request_id,
        )


async def add_member(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    email: str,
    role: str,
    actor_role: str,
    audit: AuditContext,
) -> asyncpg.Record:
    role = _role(role)
    user = await users_store.fetch_user_by_email(conn, email=normalise_email(email))
    if user is None:
        raise NotFound(
            "no user has this email; they must register first", details={"field": "email"}
        )
    try:
        async with conn.transaction():
            row = await store.insert_member(
                conn, project_id=project_id, user_id=user["id"], role=role
            )
            await audit_store.insert_audit_event(
                conn,
                project_id=project_id,
                actor_id=audit.actor_id,
                actor_role=actor_role,
                action="member.added",
                entity_type="member",
                entity_id=user["id"],
                after={"email": user["email"], "role": role},
                request_id=audit.request_id,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("this user is already a member", details={"field": "email"}) from None
    return row


def _owners_after(members: list[asyncpg.Record], user_id: UUID, new_role: str | None) -> int:
    return sum(
        1 for m in members if (new_role if m["user_id"] == user_id else m["role"]) == "owner"
    )


async def change_member_role(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    user_id: UUID,
    role: str,
    actor_role: str,
    audit: AuditContext,
) -> asyncpg.Record:
    role = _role(role)
    async with conn.transaction():
        members = await store.lock_members(conn, project_id=project_id)
        current = next((m for m in members if m["user_id"] == user_id), None)
        if current is None:
            raise NotFound("member not found")
        if _owners_after(members, user_id, role) == 0:
            raise Conflict("the last owner cannot be demoted; make someone else owner first")
        row = await store.update_member_role(
            conn, project_id=project_id, user_id=user_id, role=role
        )
        assert row is not None
        await audit_store.insert_audit_event(
            conn,
            project_id=project_id,
            actor_id=audit.actor_id,
            actor_role=actor_role,
            action="member.role_changed",
            entity_type="member",
            entity_id=user_id,
            before={"role": current["role"]},
            after={"role": role},
            request_id=audit.request_id,
        )
    return row


async def remove_member(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    user_id: UUID,
    actor_role: str,
    audit: AuditContext,
) -> None:
    async with conn.transaction():
        members = await store.lock_members(conn, project_id=project_id)
        current = next((m for m in members if m["user_id"] == user_id), None)
        if current is None:
            raise NotFound("member not found")
        if _owners_after(members, user_id, None) == 0:
            raise Conflict("the last owner cannot leave or be removed")
        await store.delete_member(conn, project_id=project_id, user_id=user_id)
        await audit_store.insert_audit_event(
            conn,
            project_id=project_id,
            actor_id=audit.actor_id,
            actor_role=actor_role,
            action="member.removed",
            entity_type="member",
            entity_id=user_id,
            before={"role": current["role"]},
            request_id=audit.request_id,
        )
