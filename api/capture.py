"""Capture sessions: ``/runs/{rid}/capture-sessions`` and ``/capture-sessions/{cid}``.

Start (POST on the run) and stop answer with the current state when repeated: a second start
while a session runs returns that session with 200 (201 only when one was created), and a
second stop returns the stopped session with 200.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request

from actors import start_capture, stop_capture
from api.context import audit_context, project_role
from api.idempotency import idempotent
from api.pagination import decode_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core import capture as domain
from core.errors import AppError, InvalidInput
from core.stores import capture as store

log = logging.getLogger("etp.api.capture")
bp = Blueprint("capture", __name__)


class CaptureStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=domain.NOTES_MAX)


CAPTURE_FIELDS = (
    "id",
    "run_id",
    "project_id",
    "ordinal",
    "status",
    "previous_status",
    "started_at",
    "stopped_at",
    "duration_seconds",
    "notes",
    "summary",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
)


def capture_json(row: Any) -> dict[str, Any]:
    return {field: row[field] for field in CAPTURE_FIELDS}


@bp.get("/runs/<uuid:run_id>/capture-sessions")
@project("capture.read")
async def list_capture_sessions(run_id: UUID) -> Response:
    """The run's sessions in ordinal order."""
    limit = page_limit()
    cursor = decode_cursor(1)
    after = cursor[0] if cursor else None
    if after is not None and not isinstance(after, int):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    async with services().database.acquire() as conn:
        rows = await store.list_sessions(conn, run_id=run_id, after_ordinal=after, limit=limit + 1)
    return json_response(
        page(rows, limit, serialise=capture_json, cursor_of=lambda r: [r["ordinal"]])
    )


@bp.post("/runs/<uuid:run_id>/capture-sessions")
@project("capture.write")
@idempotent
async def start_capture_session(run_id: UUID) -> Response:
    """Starts the run's next session (a draft run starts with it); 200 with the running
    session if there already is one; 409 on ended runs. The body (``notes``) is optional."""
    data = await _optional_body()
    async with services().database.acquire() as conn:
        outcome = await domain.start_capture_session(
            conn, run_id=run_id, role=project_role(), audit=audit_context(), notes=data.notes
        )
    if outcome.changed:
        try:
            await start_capture(services().settings, outcome.session["id"])
        except AppError as exc:
            # Not fatal: every sensor writer reads running windows from the database within
            # a second; the actor only makes it immediate.
            log.warning("capture actor did not start", extra={"error": exc.message})
    return json_response(capture_json(outcome.session), status=201 if outcome.changed else 200)


async def _optional_body() -> CaptureStartIn:
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return CaptureStartIn()
    body = await request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", details={"field": "body"})
    try:
        return CaptureStartIn.model_validate(body)
    except ValueError as exc:
        raise InvalidInput("the request body is not valid", details={"reason": str(exc)}) from None


@bp.get("/capture-sessions/<uuid:capture_session_id>")
@project("capture.read")
async def get_capture_session(capture_session_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.get_capture_session(conn, capture_session_id=capture_session_id)
    return json_response(capture_json(row))


@bp.post("/capture-sessions/<uuid:capture_session_id>/stop")
@project("capture.write")
@idempotent
async def stop_capture_session(capture_session_id: UUID) -> Response:
    """Running → succeeded: the window's end is fixed, every sensor of the run flushes (the
    barrier), the summary is computed and stored; an ended session answers as it is."""
    state = services()
    async with state.database.acquire() as conn:
        stopping = await domain.begin_stop(conn, capture_session_id=capture_session_id)
    summary = None
    if stopping is not None:
        try:
            summary = await stop_capture(state.settings, capture_session_id)
        except AppError as exc:
            async with state.database.acquire() as conn:
                row = await domain.change_capture_status(
                    conn,
                    capture_session_id=capture_session_id,
                    status="failed",
                    role=project_role(),
                    audit=audit_context(),
                    failure_reason=f"the stop barrier failed: {exc.message}",
                )
            return json_response(capture_json(row))
    async with state.database.acquire() as conn:
        outcome = await domain.stop_capture_session(
            conn,
            capture_session_id=capture_session_id,
            role=project_role(),
            audit=audit_context(),
            summary=summary,
            stopped_at=stopping["stopped_at"] if stopping is not None else None,
        )
    return json_response(capture_json(outcome.session))


@bp.delete("/capture-sessions/<uuid:capture_session_id>")
@project("capture.write")
@idempotent
async def delete_capture_session(capture_session_id: UUID) -> Response:
    """Only draft or failed sessions (409 otherwise)."""
    async with services().database.acquire() as conn:
        await domain.delete_capture_session(
            conn, capture_session_id=capture_session_id, role=project_role(), audit=audit_context()
        )
    return Response(status=204)
