"""``/projects`` and ``/projects/{pid}/members``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, principal, project_role
from api.idempotency import idempotent
from api.live_events import publish_revocation
from api.pagination import decode_time_cursor, page, page_limit
from api.policy import project, user
from api.responses import json_response
from api.state import services
from core import projects as domain
from core.errors import NotFound
from core.stores import projects as store

bp = Blueprint("projects", __name__)


class ProjectIn(BaseModel):
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)


class ProjectPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class MemberIn(BaseModel):
    email: str = Field(max_length=320)
    role: str


class MemberPatch(BaseModel):
    role: str


def project_json(row: Any) -> dict[str, Any]:
    body = {
        k: row[k] for k in ("id", "name", "description", "created_by", "created_at", "updated_at")
    }
    if "role" in row:
        body["role"] = row["role"]
    return body


def member_json(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("user_id", "email", "display_name", "role", "created_at")}


@bp.get("/projects")
@user
async def list_projects() -> Response:
    """The caller's projects only, newest first, with the caller's role in each."""
    limit = page_limit()
    after = decode_time_cursor()
    async with services().database.acquire() as conn:
        rows = await store.list_projects_for_member(
            conn,
            user_id=principal().user_id,
            limit=limit + 1,
            after=after,
            query=request.args.get("q") or None,
        )
    return json_response(
        page(
            rows,
            limit,
            serialise=project_json,
            cursor_of=lambda r: (r["created_at"].isoformat(), str(r["id"])),
        )
    )


@bp.post("/projects")
@user
@idempotent
@validate_request(ProjectIn)
async def create_project(data: ProjectIn) -> Response:
    """Creates a project; the caller becomes its owner."""
    async with services().database.acquire() as conn:
        row = await domain.create_project(
            conn,
            principal=principal(),
            name=data.name,
            description=data.description,
            audit=audit_context(),
        )
    return json_response(project_json(row), status=201)


@bp.get("/projects/<uuid:project_id>")
@project("project.read")
async def get_project(project_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await store.fetch_project_for_member(
            conn, project_id=project_id, user_id=principal().user_id
        )
    if row is None:
        raise NotFound("project not found")
    return json_response(project_json(row))


@bp.patch("/projects/<uuid:project_id>")
@project("project.update")
@idempotent
@validate_request(ProjectPatch)
async def update_project(project_id: UUID, data: ProjectPatch) -> Response:
    async with services().database.acquire() as conn:
        role = project_role()
        row = await domain.update_project(
            conn,
            project_id=project_id,
            role=role,
            changes=data.model_dump(exclude_none=True),
            audit=audit_context(),
        )
    return json_response({**project_json(row), "role": role})


@bp.delete("/projects/<uuid:project_id>")
@project("project.delete")
@idempotent
async def delete_project(project_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        role = project_role()
        members = await store.list_members(conn, project_id=project_id)
        await domain.delete_project(conn, project_id=project_id, role=role, audit=audit_context())
    for member in members:
        await publish_revocation(project_id=project_id, user_id=member["user_id"])
    return Response(status=204)


@bp.get("/projects/<uuid:project_id>/members")
@project("members.read")
async def list_members(project_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        rows = await store.list_members(conn, project_id=project_id)
    return json_response({"items": [member_json(r) for r in rows], "next_cursor": None})


@bp.post("/projects/<uuid:project_id>/members")
@project("members.manage")
@idempotent
@validate_request(MemberIn)
async def add_member(project_id: UUID, data: MemberIn) -> Response:
    async with services().database.acquire() as conn:
        role = project_role()
        row = await domain.add_member(
            conn,
            project_id=project_id,
            email=data.email,
            role=data.role,
            actor_role=role,
            audit=audit_context(),
        )
    return json_response(member_json(row), status=201)


@bp.patch("/projects/<uuid:project_id>/members/<uuid:user_id>")
@project("members.manage")
@idempotent
@validate_request(MemberPatch)
async def change_member(project_id: UUID, user_id: UUID, data: MemberPatch) -> Response:
    async with services().database.acquire() as conn:
        role = project_role()
        row = await domain.change_member_role(
            conn,
            project_id=project_id,
            user_id=user_id,
            role=data.role,
            actor_role=role,
            audit=audit_context(),
        )
    await publish_revocation(project_id=project_id, user_id=user_id)
    return json_response(member_json(row))


@bp.delete("/projects/<uuid:project_id>/members/<uuid:user_id>")
@project("members.manage")
@idempotent
async def remove_member(project_id: UUID, user_id: UUID) -> Response:
    """Removes a member (owners only); the last owner stays."""
    async with services().database.acquire() as conn:
        await domain.remove_member(
            conn,
            project_id=project_id,
            user_id=user_id,
            actor_role=project_role(),
            audit=audit_context(),
        )
    await publish_revocation(project_id=project_id, user_id=user_id)
    return Response(status=204)


@bp.post("/projects/<uuid:project_id>/leave")
@project("members.read")
@idempotent
async def leave_project(project_id: UUID) -> Response:
    """The caller leaves the project (any role); the last owner cannot."""
    caller = principal()
    async with services().database.acquire() as conn:
        await domain.remove_member(
            conn,
            project_id=project_id,
            user_id=caller.user_id,
            actor_role=project_role(),
            audit=audit_context(),
        )
    await publish_revocation(project_id=project_id, user_id=caller.user_id)
    return Response(status=204)
