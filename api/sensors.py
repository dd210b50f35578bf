"""``/projects/{pid}/sensors`` and ``/sensors/{sid}``: sensors, tokens, sharing, error journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, project_id, project_role
from api.idempotency import idempotent
from api.ingest import token_cache
from api.pagination import decode_cursor, decode_time_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core import sensors as domain
from core.errors import InvalidInput, NotFound
from core.sensor_status import STATUSES, StatusThresholds, compute_status, utc_now
from core.stores import ingest_errors as errors_store
from core.stores import sensors as store

bp = Blueprint("sensors", __name__)

_STRICT = ConfigDict(extra="forbid", strict=True)


class SensorIn(BaseModel):
    model_config = _STRICT
    name: str = Field(max_length=domain.NAME_MAX)
    type: str = Field(default="", max_length=domain.TYPE_MAX)
    input_unit: str = Field(default="", max_length=domain.UNIT_MAX)
    display_unit: str = Field(default="", max_length=domain.UNIT_MAX)
    expected_rate_hz: float | None = None
    description: str = Field(default="", max_length=domain.DESCRIPTION_MAX)
    rate_points_per_s: float | None = None
    burst_points: int | None = None


class SensorPatch(BaseModel):
    """Only the fields sent change; ``null`` clears the rate and the rate-limit overrides."""

    model_config = _STRICT
    name: str | None = Field(default=None, max_length=domain.NAME_MAX)
    type: str | None = Field(default=None, max_length=domain.TYPE_MAX)
    input_unit: str | None = Field(default=None, max_length=domain.UNIT_MAX)
    display_unit: str | None = Field(default=None, max_length=domain.UNIT_MAX)
    expected_rate_hz: float | None = None
    description: str | None = Field(default=None, max_length=domain.DESCRIPTION_MAX)
    rate_points_per_s: float | None = None
    burst_points: int | None = None


class RotateIn(BaseModel):
    model_config = _STRICT
    grace_period_s: int = Field(default=0, ge=0, le=domain.GRACE_PERIOD_MAX_S)


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_ids: list[UUID] = Field(max_length=domain.SHARE_MAX_PROJECTS)


def _thresholds() -> StatusThresholds:
    return StatusThresholds.from_settings(services().settings)


def sensor_json(row: Any, *, now: datetime, viewer_project_id: UUID) -> dict[str, Any]:
    """A sensor as its readers see it: never the token, only its preview."""
    body = {
        k: row[k]
        for k in (
            "id",
            "project_id",
            "name",
            "type",
            "input_unit",
            "display_unit",
            "expected_rate_hz",
            "description",
            "token_preview",
            "previous_token_expires_at",
            "rate_points_per_s",
            "burst_points",
            "last_seen_at",
            "created_by",
            "created_at",
            "updated_at",
        )
    }
    body["status"] = compute_status(
        row["last_seen_at"], row["expected_rate_hz"], now, _thresholds()
    )
    body["points_last_minute"] = round(row.get("points_last_minute") or 0)
    home = row["project_id"] == viewer_project_id
    body["shared"] = not home  # seen through a share, not from its home project
    if home:
        body["shared_project_ids"] = list(row["shared_project_ids"])
    return body


async def _optional_body(model: type[RotateIn]) -> RotateIn:
    """The JSON body validated by ``model``; an empty body means the defaults."""
    raw = await request.get_data(as_text=True)
    if not raw.strip():
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        fields = [
            {"loc": [str(p) for p in err["loc"]], "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput("the request body is not valid", details={"fields": fields}) from None


async def _tokens_revoked(sensor_id: UUID) -> None:
    """Drops cached look-ups here at once, and in every other process through Redis."""
    token_cache().invalidate_sensor(sensor_id)
    await domain.publish_sensor_token_revoked(services().redis, sensor_id)


@bp.get("/projects/<uuid:project_id>/sensors")
@project("sensor.read")
async def list_sensors(project_id: UUID) -> Response:
    """The project's sensors and those shared into it; filters ``type``, ``status``, ``q``."""
    limit = page_limit()
    after = decode_time_cursor()
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(STATUSES)}", details={"field": "status"}
        )
    sensor_type = request.args.get("type") or None
    query = request.args.get("q") or None
    for name, value in (("type", sensor_type), ("q", query)):
        if value is not None and len(value) > domain.NAME_MAX:
            raise InvalidInput(
                f"{name} must have at most {domain.NAME_MAX} characters", details={"field": name}
            )
    now = utc_now()
    async with services().database.acquire() as conn:
        rows = await store.list_sensors_in_project(
            conn,
            project_id=project_id,
            limit=limit + 1,
            after=after,
            sensor_type=sensor_type,
            status=status,
            query=query,
            now=now,
            thresholds=_thresholds(),
        )
    return json_response(
        page(
            rows,
            limit,
            serialise=lambda r: sensor_json(r, now=now, viewer_project_id=project_id),
            cursor_of=lambda r: (r["created_at"].isoformat(), str(r["id"])),
        )
    )


@bp.post("/projects/<uuid:project_id>/sensors")
@project("sensor.write")
@idempotent
@validate_request(SensorIn)
async def create_sensor(project_id: UUID, data: SensorIn) -> Response:
    """Registers a sensor; ``token`` is in this response only (the database keeps a hash)."""
    async with services().database.acquire() as conn:
        token, row = await domain.create_sensor(
            conn,
            project_id=project_id,
            role=project_role(),
            values=data.model_dump(),
            audit=audit_context(),
        )
    body = sensor_json(row, now=utc_now(), viewer_project_id=project_id)
    return json_response({**body, "token": token}, status=201)


@bp.get("/sensors/<uuid:sensor_id>")
@project("sensor.read")
async def get_sensor(sensor_id: UUID) -> Response:
    now = utc_now()
    async with services().database.acquire() as conn:
        row = await store.fetch_sensor(conn, sensor_id=sensor_id, now=now)
    if row is None:
        raise NotFound("sensor not found")
    return json_response(sensor_json(row, now=now, viewer_project_id=project_id()))


@bp.patch("/sensors/<uuid:sensor_id>")
@project("sensor.write")
@idempotent
@validate_request(SensorPatch)
async def update_sensor(sensor_id: UUID, data: SensorPatch) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.update_sensor(
            conn,
            sensor_id=sensor_id,
            role=project_role(),
            changes=data.model_dump(exclude_unset=True),
            audit=audit_context(),
        )
    # Ingest caches the rate limits with the token look-up; let new values apply at once.
    await _tokens_revoked(sensor_id)
    return json_response(sensor_json(row, now=utc_now(), viewer_project_id=project_id()))


@bp.delete("/sensors/<uuid:sensor_id>")
@project("sensor.delete")
@idempotent
async def delete_sensor(sensor_id: UUID) -> Response:
    """Deletes the sensor (its token is refused at once); 409 while a capture session uses it."""
    async with services().database.acquire() as conn:
        await domain.delete_sensor(
            conn, sensor_id=sensor_id, role=project_role(), audit=audit_context()
        )
    await _tokens_revoked(sensor_id)
    return Response(status=204)


@bp.post("/sensors/<uuid:sensor_id>/rotate-token")
@project("sensor.rotate_token")
@idempotent
async def rotate_token(sensor_id: UUID) -> Response:
    """A new token, in this response only; the old one is refused at once, or after the
    optional ``grace_period_s`` (at most 600)."""
    data = await _optional_body(RotateIn)
    async with services().database.acquire() as conn:
        token, row = await domain.rotate_token(
            conn,
            sensor_id=sensor_id,
            role=project_role(),
            grace_period_s=data.grace_period_s,
            audit=audit_context(),
        )
    await _tokens_revoked(sensor_id)
    body = sensor_json(row, now=utc_now(), viewer_project_id=project_id())
    return json_response({**body, "token": token})


def error_json(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "created_at", "code", "message", "point_index", "sample")}


@bp.get("/sensors/<uuid:sensor_id>/errors")
@project("sensor.read")
async def list_errors(sensor_id: UUID) -> Response:
    """The sensor's ingest error journal (the newest 1,000), newest first."""
    limit = page_limit()
    cursor = decode_cursor(1)
    before_id = cursor[0] if cursor else None
    if before_id is not None and (isinstance(before_id, bool) or not isinstance(before_id, int)):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    async with services().database.acquire() as conn:
        rows = await errors_store.list_ingest_errors(
            conn, sensor_id=sensor_id, limit=limit + 1, before_id=before_id
        )
    return json_response(page(rows, limit, serialise=error_json, cursor_of=lambda r: [r["id"]]))


@bp.put("/sensors/<uuid:sensor_id>/projects")
@project("sensor.share")
@idempotent
@validate_request(ShareIn)
async def share_sensor(sensor_id: UUID, data: ShareIn) -> Response:
    """Sets the projects the sensor is shared with (reads only; changes stay with its home)."""
    async with services().database.acquire() as conn:
        shared = await domain.share_sensor(
            conn,
            sensor_id=sensor_id,
            project_ids=data.project_ids,
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(
        {"sensor_id": sensor_id, "home_project_id": project_id(), "project_ids": shared}
    )
