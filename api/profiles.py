"""``/sensors/{sid}/profiles`` and ``/profiles/{id}``: conversion profiles and their transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, project_role
from api.idempotency import idempotent
from api.ingest import sensor_gateway
from api.pagination import decode_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core import profiles as domain
from core.conversion import STATUS_NO_PROFILE, profile_applying_at
from core.errors import InvalidInput, NotFound
from core.stores import profiles as store

bp = Blueprint("profiles", __name__)


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    payload: Any  # checked by core.conversion.validate_profile, with precise messages
    description: str = Field(default="", max_length=domain.DESCRIPTION_MAX)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    valid_from: datetime


def profile_json(row: Any) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "sensor_id",
            "version",
            "kind",
            "payload",
            "status",
            "valid_from",
            "valid_to",
            "description",
            "created_by",
            "created_at",
            "activated_at",
        )
    }


def change_json(change: domain.ProfileChange) -> dict[str, Any]:
    """The profile after a transition, plus what the sensor converts with from now on."""
    body = {
        **profile_json(change.profile),
        "sensor_active_profile_id": change.active_profile_id,
        "deprecated_profile_id": change.deprecated_profile_id,
    }
    if change.active_profile_id is None:
        body["notice"] = domain.NO_ACTIVE_PROFILE_NOTICE
    return body


def _timestamp(name: str) -> datetime:
    raw = request.args.get(name)
    value = None
    if raw:
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            value = None
    if value is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{name} must be an ISO-8601 timestamp with an offset", details={"field": name}
        )
    return value


@bp.get("/sensors/<uuid:sensor_id>/profiles")
@project("profile.read")
async def list_profiles(sensor_id: UUID) -> Response:
    """The sensor's profile versions, newest first; optional ``status`` filter."""
    limit = page_limit()
    cursor = decode_cursor(1)
    before = cursor[0] if cursor else None
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise InvalidInput("cursor is not valid", details={"field": "cursor"})
    status = request.args.get("status") or None
    if status is not None and status not in domain.STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(domain.STATUSES)}", details={"field": "status"}
        )
    async with services().database.acquire() as conn:
        rows = await store.list_profiles(
            conn, sensor_id=sensor_id, limit=limit + 1, before_version=before, status=status
        )
    return json_response(
        page(rows, limit, serialise=profile_json, cursor_of=lambda r: [r["version"]])
    )


@bp.post("/sensors/<uuid:sensor_id>/profiles")
@project("profile.write")
@idempotent
@validate_request(ProfileIn)
async def create_profile(sensor_id: UUID, data: ProfileIn) -> Response:
    """A new draft version; activate or schedule it to make it convert points."""
    async with services().database.acquire() as conn:
        row = await domain.create_profile(
            conn,
            sensor_id=sensor_id,
            role=project_role(),
            kind=data.kind,
            payload=data.payload,
            description=data.description,
            audit=audit_context(),
        )
    return json_response(profile_json(row), status=201)


@bp.get("/sensors/<uuid:sensor_id>/profiles/applying")
@project("profile.read")
async def profile_applying(sensor_id: UUID) -> Response:
    """The profile that converts a point taken at ``?at=`` (none: physical = raw)."""
    at = _timestamp("at")
    async with services().database.acquire() as conn:
        profiles = await domain.profiles_applying(conn, sensor_id)
    chosen = profile_applying_at(profiles, at)
    return json_response(
        {
            "at": at,
            "profile": profile_json(chosen) if chosen is not None else None,
            "conversion_status": None if chosen is not None else STATUS_NO_PROFILE,
        }
    )


@bp.get("/profiles/<uuid:profile_id>")
@project("profile.read")
async def get_profile(profile_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await store.fetch_profile(conn, profile_id=profile_id)
    if row is None:
        raise NotFound("profile not found")
    return json_response(profile_json(row))


async def _tell_writers(change: domain.ProfileChange) -> None:
    """Live writers reload at once instead of at their next periodic refresh."""
    await sensor_gateway().reload_profiles(change.profile["sensor_id"])


@bp.post("/profiles/<uuid:profile_id>/activate")
@project("profile.write")
@idempotent
async def activate_profile(profile_id: UUID) -> Response:
    """Activates a draft or scheduled profile now; the active one ends now (deprecated)."""
    async with services().database.acquire() as conn:
        change = await domain.activate_profile(
            conn, profile_id=profile_id, role=project_role(), audit=audit_context()
        )
    await _tell_writers(change)
    return json_response(change_json(change))


@bp.post("/profiles/<uuid:profile_id>/schedule")
@project("profile.write")
@idempotent
@validate_request(ScheduleIn)
async def schedule_profile(profile_id: UUID, data: ScheduleIn) -> Response:
    """Schedules a draft to become active at a future ``valid_from`` (ISO-8601 with offset)."""
    async with services().database.acquire() as conn:
        change = await domain.schedule_profile(
            conn,
            profile_id=profile_id,
            role=project_role(),
            valid_from=data.valid_from,
            audit=audit_context(),
        )
    await _tell_writers(change)
    return json_response(change_json(change))


@bp.post("/profiles/<uuid:profile_id>/deprecate")
@project("profile.write")
@idempotent
async def deprecate_profile(profile_id: UUID) -> Response:
    """Deprecates an active or scheduled profile; deprecating the active one leaves the sensor
    without an active profile (the response says so)."""
    async with services().database.acquire() as conn:
        change = await domain.deprecate_profile(
            conn, profile_id=profile_id, role=project_role(), audit=audit_context()
        )
    await _tell_writers(change)
    return json_response(change_json(change))
