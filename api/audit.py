"""``GET /projects/{pid}/audit``: the project's audit log, newest first, cursor pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from quart import Blueprint, Response, request

from api.context import parse_uuid
from api.pagination import decode_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core.errors import InvalidInput
from core.stores import audit as store

bp = Blueprint("audit", __name__)


def _timestamp(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            f"{name} must be an ISO-8601 timestamp with an offset", details={"field": name}
        )
    return value


def audit_json(row: Any) -> dict[str, Any]:
    return dict(row)


@bp.get("/projects/<uuid:project_id>/audit")
@project("audit.read")
async def list_audit(project_id: UUID) -> Response:
    limit = page_limit()
    cursor = decode_cursor(1)
    before_id = cursor[0] if cursor else None
    if before_id is not None and not isinstance(before_id, int):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    actor = request.args.get("actor_id")
    async with services().database.acquire() as conn:
        rows = await store.list_audit_events(
            conn,
            project_id=project_id,
            limit=limit + 1,
            before_id=before_id,
            entity_type=request.args.get("entity_type") or None,
            entity_id=request.args.get("entity_id") or None,
            actor_id=parse_uuid(actor, "actor_id") if actor else None,
            from_ts=_timestamp("from"),
            to_ts=_timestamp("to"),
        )
    return json_response(page(rows, limit, serialise=audit_json, cursor_of=lambda r: [r["id"]]))
