"""Conversion profiles: versions per sensor and their state machine.

``draft → active | scheduled → deprecated`` (a scheduled profile may also be re-scheduled or
activated early). Every change of a sensor's profiles runs under a lock on the sensor row, and
the partial unique index ``conversion_profiles_one_active`` backs the rule that at most one
profile is active at any instant. Windows (``valid_from`` inclusive, ``valid_to`` exclusive)
decide which profile converts a point: see ``core.conversion.profile_applying_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from core.conversion import validate_profile
from core.errors import Conflict, InvalidInput, NotFound
from core.outbox import write_event
from core.principal import AuditContext
from core.stores import audit as audit_store
from core.stores import profiles as store

DESCRIPTION_MAX = 10_000
STATUSES = ("draft", "active", "scheduled", "deprecated")
# status -> the transitions allowed from it
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("activate", "schedule"),
    "scheduled": ("activate", "schedule", "deprecate"),
    "active": ("deprecate",),
    "deprecated": (),
}
NO_ACTIVE_PROFILE_NOTICE = (
    "the sensor has no active profile now: new points are stored with physical value = raw "
    "value and conversion status 'no_profile' until a profile is activated"
)


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A transition's result: the profile, the sensor's active profile after it, and the one
    it replaced (if any)."""

    profile: asyncpg.Record
    active_profile_id: UUID | None
    deprecated_profile_id: UUID | None = None


def check_transition(status: str, transition: str) -> None:
    """Raises Conflict (with the current status and the allowed transitions) if not allowed."""
    allowed = TRANSITIONS[status]
    if transition not in allowed:
        raise Conflict(
            f"cannot {transition} a {status} profile"
            + (f"; allowed: {', '.join(allowed)}" if allowed else "; it is final"),
            details={"status": status, "allowed": list(allowed)},
        )


async def _audit(
    conn: asyncpg.Connection,
    audit: AuditContext,
    *,
    project_id: UUID,
    role: str | None,
    action: str,
    profile: asyncpg.Record,
    after: dict[str, Any],
    before: Any = None,
) -> None:
    await audit_store.insert_audit_event(
        conn,
        project_id=project_id,
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="conversion_profile",
        entity_id=profile["id"],
        before=before,
        after={"sensor_id": str(profile["sensor_id"]), "version": profile["version"], **after},
        request_id=audit.request_id,
    )


async def create_profile(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    role: str,
    kind: str,
    payload: Any,
    description: str,
    audit: AuditContext,
) -> asyncpg.Record:
    """A new draft with the sensor's next version; the payload is validated strictly."""
    clean = validate_profile(kind, payload)
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"description must have at most {DESCRIPTION_MAX} characters",
            details={"field": "description"},
        )
    async with conn.transaction():
        project_id = await store.lock_sensor_of_profiles(conn, sensor_id=sensor_id)
        if project_id is None:
            raise NotFound("sensor not found")
        row = await store.insert_profile(
            conn,
            sensor_id=sensor_id,
            kind=kind,
            payload=clean,
            description=description,
            created_by=audit.actor_id,
        )
        await _audit(
            conn,
            audit,
            project_id=project_id,
            role=role,
            action="profile.created",
            profile=row,
            after={"kind": kind, "status": "draft"},
        )
    return row


async def _lock(conn: asyncpg.Connection, profile_id: UUID) -> tuple[asyncpg.Record, UUID]:
    """(the profile, its sensor's project) with the sensor row, then the profile, locked."""
    found = await store.fetch_profile(conn, profile_id=profile_id)
    if found is None:
        raise NotFound("profile not found")
    project_id = await store.lock_sensor_of_profiles(conn, sensor_id=found["sensor_id"])
    profile = await store.fetch_profile(conn, profile_id=profile_id, lock=True)
    if project_id is None or profile is None:
        raise NotFound("profile not found")
    return profile, project_id


async def _switch_to(
    conn: asyncpg.Connection, profile: asyncpg.Record, now: datetime
) -> tuple[asyncpg.Record, UUID | None]:
    """Makes ``profile`` the active one from ``min(valid_from or now, now)`` on; the previously
    active profile ends at that instant. Returns (profile, id of the one deprecated)."""
    switch_at = min(profile["valid_from"] or now, now)
    previous = await store.fetch_active_profile(conn, sensor_id=profile["sensor_id"], lock=True)
    if previous is not None:
        # Deprecate first: the unique index allows one active row at every statement.
        await store.mark_deprecated(conn, profile_id=previous["id"], valid_to=switch_at)
    row = await store.mark_active(conn, profile_id=profile["id"], valid_from=switch_at, now=now)
    return row, previous["id"] if previous is not None else None


async def activate_profile(
    conn: asyncpg.Connection, *, profile_id: UUID, role: str, audit: AuditContext
) -> ProfileChange:
    """Activates a draft or scheduled profile now; the active one is deprecated as of now."""
    async with conn.transaction():
        profile, project_id = await _lock(conn, profile_id)
        check_transition(profile["status"], "activate")
        row, deprecated = await _switch_to(conn, profile, await store.clock_now(conn))
        await _audit(
            conn,
            audit,
            project_id=project_id,
            role=role,
            action="profile.activated",
            profile=row,
            before={"status": profile["status"]},
            after={
                "status": "active",
                "deprecated_profile_id": str(deprecated) if deprecated else None,
            },
        )
        await write_event(
            conn,
            project_id=project_id,
            event_type="profile.activated",
            payload={
                "profile_id": str(row["id"]),
                "sensor_id": str(row["sensor_id"]),
                "version": row["version"],
                "valid_from": row["valid_from"].isoformat() if row["valid_from"] else None,
                "scheduled": False,
                "deprecated_profile_id": str(deprecated) if deprecated else None,
            },
        )
    return ProfileChange(row, active_profile_id=row["id"], deprecated_profile_id=deprecated)


async def schedule_profile(
    conn: asyncpg.Connection,
    *,
    profile_id: UUID,
    role: str,
    valid_from: datetime,
    audit: AuditContext,
) -> ProfileChange:
    """Schedules a draft (or re-schedules a scheduled profile) to become active at a future time."""
    if valid_from.utcoffset() is None:
        raise InvalidInput(
            "valid_from must be an ISO-8601 timestamp with an offset",
            details={"field": "valid_from"},
        )
    async with conn.transaction():
        profile, project_id = await _lock(conn, profile_id)
        check_transition(profile["status"], "schedule")
        now = await store.clock_now(conn)
        if valid_from <= now:
            raise InvalidInput(
                f"valid_from must be in the future (now is {now.isoformat()})",
                details={"field": "valid_from"},
            )
        row = await store.mark_scheduled(conn, profile_id=profile_id, valid_from=valid_from)
        active = await store.fetch_active_profile(conn, sensor_id=row["sensor_id"])
        await _audit(
            conn,
            audit,
            project_id=project_id,
            role=role,
            action="profile.scheduled",
            profile=row,
            before={"status": profile["status"], "valid_from": profile["valid_from"]},
            after={"status": "scheduled", "valid_from": valid_from.isoformat()},
        )
    return ProfileChange(row, active_profile_id=active["id"] if active else None)


async def deprecate_profile(
    conn: asyncpg.Connection, *, profile_id: UUID, role: str, audit: AuditContext
) -> ProfileChange:
    """Deprecates an active profile (as of now: the sensor is left without one) or a scheduled
    one (it never applies: its window becomes empty)."""
    async with conn.transaction():
        profile, project_id = await _lock(conn, profile_id)
        check_transition(profile["status"], "deprecate")
        if profile["status"] == "active":
            valid_to = await store.clock_now(conn)
        else:
            valid_to = profile["valid_from"]
        row = await store.mark_deprecated(conn, profile_id=profile_id, valid_to=valid_to)
        active = await store.fetch_active_profile(conn, sensor_id=row["sensor_id"])
        await _audit(
            conn,
            audit,
            project_id=project_id,
            role=role,
            action="profile.deprecated",
            profile=row,
            before={"status": profile["status"]},
            after={"status": "deprecated", "valid_to": row["valid_to"].isoformat()},
        )
    return ProfileChange(row, active_profile_id=active["id"] if active else None)


async def activate_due_scheduled_profiles(
    conn: asyncpg.Connection, *, now: datetime
) -> list[ProfileChange]:
    """Activates every scheduled profile whose ``valid_from`` has come (the worker calls this).

    Each switch keeps the scheduled ``valid_from`` as the start of the window, so conversion
    does not depend on how late the worker ran. One transaction per sensor.
    """
    changes: list[ProfileChange] = []
    system = AuditContext(actor_id=None, request_id=None)
    for sensor_id in await store.list_sensors_with_due_profiles(conn, now=now):
        async with conn.transaction():
            project_id = await store.lock_sensor_of_profiles(conn, sensor_id=sensor_id)
            if project_id is None:
                continue  # deleted meanwhile
            for profile in await store.lock_due_profiles(conn, sensor_id=sensor_id, now=now):
                row, deprecated = await _switch_to(conn, profile, now)
                await _audit(
                    conn,
                    system,
                    project_id=project_id,
                    role=None,
                    action="profile.activated",
                    profile=row,
                    before={"status": "scheduled"},
                    after={
                        "status": "active",
                        "scheduled": True,
                        "deprecated_profile_id": str(deprecated) if deprecated else None,
                    },
                )
                changes.append(ProfileChange(row, row["id"], deprecated))
    return changes


async def profiles_applying(conn: asyncpg.Connection, sensor_id: UUID) -> list[asyncpg.Record]:
    """The sensor's non-draft profiles with their windows, oldest version first.

    Pick the one for a point with ``core.conversion.profile_applying_at(profiles, ts)``; None
    means ``core.conversion.NO_PROFILE`` (physical = raw, status ``no_profile``).
    """
    return await store.list_applying_profiles(conn, sensor_id=sensor_id)
