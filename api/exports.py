"""``/exports``: export jobs (telemetry, runs, metrics as CSV or JSON) and their files.

An export belongs to the project it reads from and to the user who asked for it: only they see
its status and download it (a viewer of a project can read the same data anyway, but an export
may name sensors shared from elsewhere).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, send_file
from quart_schema import validate_request

from api.context import principal
from api.idempotency import idempotent
from api.policy import project, user
from api.responses import json_response
from api.state import services
from api.webhooks import enqueue_job
from core import jobs
from core.artifact_store import artifact_store
from core.errors import Conflict, InvalidInput, NotFound
from core.stores import audit as audit_store
from core.stores import exports as store

bp = Blueprint("exports", __name__)


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: str
    format: str = "csv"
    project_id: UUID | None = None
    experiment_id: UUID | None = None
    run_id: UUID | None = None
    capture_session_id: UUID | None = None
    sensor_ids: list[UUID] = Field(default_factory=list, max_length=store.SENSOR_IDS_MAX)
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None


def _download_url(export_id: UUID) -> str:
    return f"{services().settings.base_url.rstrip('/')}/api/v1/exports/{export_id}/download"


def export_json(row: Any) -> dict[str, Any]:
    body = {
        k: row[k]
        for k in (
            "id",
            "project_id",
            "kind",
            "format",
            "params",
            "status",
            "progress",
            "row_count",
            "size_bytes",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        )
    }
    body["download_url"] = _download_url(row["id"]) if row["status"] == "succeeded" else None
    return body


async def _own_export(export_id: UUID) -> Any:
    async with services().database.acquire() as conn:
        row = await store.fetch_export(conn, export_id=export_id)
    if row is None or row["requested_by"] != principal().user_id:
        raise NotFound("export not found")
    return row


@bp.post("/exports")
@user
@idempotent
@validate_request(ExportIn)
async def create_export(data: ExportIn) -> Response:
    """Queues an export; poll ``GET /exports/{id}`` for progress and the download URL."""
    for name in ("from_", "to"):
        value = getattr(data, name)
        if value is not None and value.utcoffset() is None:
            field = name.rstrip("_")
            raise InvalidInput(f"{field} needs a UTC offset", details={"field": field})
    spec = store.ExportSpec(
        kind=data.kind,
        format=data.format,
        project_id=data.project_id,
        experiment_id=data.experiment_id,
        run_id=data.run_id,
        capture_session_id=data.capture_session_id,
        sensor_ids=list(dict.fromkeys(data.sensor_ids)),
        from_ts=data.from_,
        to_ts=data.to,
    )
    caller = principal()
    async with services().database.transaction() as conn:
        project_id = await store.resolve_project(conn, user_id=caller.user_id, spec=spec)
        row = await store.insert_export(
            conn, project_id=project_id, requested_by=caller.user_id, spec=spec
        )
        await audit_store.insert_audit_event(
            conn,
            project_id=project_id,
            actor_id=caller.user_id,
            actor_role=None,
            action="export.created",
            entity_type="export",
            entity_id=row["id"],
            after={"kind": spec.kind, "format": spec.format, **spec.params()},
        )
    await enqueue_job(
        jobs.RUN_EXPORT,
        job_id=jobs.export_job_id(row["id"], row["lease_token"]),
        export_id=str(row["id"]),
        lease_token=row["lease_token"],
    )
    return json_response({"id": row["id"], "status": row["status"]}, status=202)


@bp.get("/exports/<uuid:export_id>")
@project("export.create")
async def get_export(export_id: UUID) -> Response:
    """Status (queued, running with percent, succeeded with a download URL, failed with the
    reason, expired)."""
    return json_response(export_json(await _own_export(export_id)))


@bp.get("/exports/<uuid:export_id>/download")
@project("export.create")
async def download_export(export_id: UUID) -> Response:
    row = await _own_export(export_id)
    if row["status"] != "succeeded" or not row["storage_key"]:
        raise Conflict(
            f"the export is {row['status']}; download it once it succeeded",
            details={"status": row["status"]},
        )
    path = artifact_store(services().settings).local_path(row["storage_key"])
    if path is None or not path.exists():
        raise NotFound("the export file is gone")
    response = await send_file(
        path,
        mimetype=store.CONTENT_TYPES[row["format"]],
        as_attachment=True,
        attachment_filename=f"{row['kind']}-export-{export_id}.{row['format']}",
    )
    return response
