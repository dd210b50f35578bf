"""Sensors: registration, tokens (issue, rotate, resolve, cache), sharing and deletion.

A sensor token is ``etps_`` + 256 random bits, shown once; the database keeps its SHA-256 and a
short preview. Ingest resolves a presented token with ``resolve_sensor_token`` (through a
``SensorTokenCache`` per process); rotation and deletion drop cached look-ups at once in the
process that made the change and, through Redis, in every other one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.principal import AuditContext
from core.redis_keys import sensor_token_revoked_channel
from core.security import hashes_equal, new_token, token_hash
from core.sensor_status import Publisher
from core.settings import Settings
from core.stores import audit as audit_store
from core.stores import sensors as store

log = logging.getLogger("etp.sensors")

TOKEN_PREFIX = "etps_"
TOKEN_BYTES = 32  # 256 bits
TOKEN_MAX_LENGTH = 200
GRACE_PERIOD_MAX_S = 600
NAME_MAX = 200
TYPE_MAX = 64
UNIT_MAX = 32
DESCRIPTION_MAX = 10_000
EXPECTED_RATE_MAX_HZ = 100_000.0
RATE_LIMIT_MAX_POINTS_PER_S = 10_000_000.0
BURST_MAX_POINTS = 100_000_000
SHARE_MAX_PROJECTS = 100

_TEXT_LIMITS = {"type": TYPE_MAX, "input_unit": UNIT_MAX, "display_unit": UNIT_MAX}
# field -> (upper limit, whole numbers only); all optional, positive, null clears them
_NUMBER_LIMITS: dict[str, tuple[float, bool]] = {
    "expected_rate_hz": (EXPECTED_RATE_MAX_HZ, False),
    "rate_points_per_s": (RATE_LIMIT_MAX_POINTS_PER_S, False),
    "burst_points": (BURST_MAX_POINTS, True),
}


# Validation ---------------------------------------------------------------------------------


def _invalid(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, details={"field": field})


def _text(values: Mapping[str, Any], field: str, limit: int, *, strip: bool = True) -> str:
    value = values[field]
    if not isinstance(value, str):
        raise _invalid(f"{field} must be a string", field)
    value = value.strip() if strip else value
    if len(value) > limit:
        raise _invalid(f"{field} must have at most {limit} characters", field)
    return value


def _positive(values: Mapping[str, Any], field: str, limit: float, *, whole: bool) -> Any:
    value = values[field]
    if value is None:
        return None
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise _invalid(f"{field} must be {kind} or null", field)
    if not math.isfinite(value) or not 0 < value <= limit:
        raise _invalid(f"{field} must be greater than 0 and at most {limit:g}", field)
    return int(value) if whole else float(value)


def clean_sensor_fields(values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Checked and normalised sensor fields; unknown fields and bad values raise InvalidInput."""
    unknown = sorted(set(values) - store.UPDATABLE)
    if unknown:
        raise _invalid(f"unknown field {unknown[0]!r}", unknown[0])
    clean: dict[str, Any] = {}
    if "name" in values or creating:
        if "name" not in values:
            raise _invalid("name is required", "name")
        name = _text(values, "name", NAME_MAX)
        if not name:
            raise _invalid(f"name must have 1 to {NAME_MAX} characters", "name")
        clean["name"] = name
    for field, limit in _TEXT_LIMITS.items():
        if field in values:
            clean[field] = _text(values, field, limit)
    if "description" in values:
        clean["description"] = _text(values, "description", DESCRIPTION_MAX, strip=False)
    for field, (maximum, whole) in _NUMBER_LIMITS.items():
        if field in values:
            clean[field] = _positive(values, field, maximum, whole=whole)
    return clean


# Token resolution and cache -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorIdentity:
    """What ingest needs to know about the sensor behind a token."""

    sensor_id: UUID
    project_id: UUID
    name: str
    expected_rate_hz: float | None
    rate_points_per_s: float | None  # None: the settings' default
    burst_points: int | None  # None: the settings' default
    via_previous_token: bool = False
    valid_for_s: float | None = None  # seconds left of a previous token's grace period

    def rate_limit(self, settings: Settings) -> tuple[float, int]:
        """(points per second, burst points) of this sensor's token bucket."""
        return (
            self.rate_points_per_s or settings.sensor_rate_points_per_s,
            self.burst_points or settings.sensor_burst_points,
        )


async def resolve_sensor_token(conn: asyncpg.Connection, token: str) -> SensorIdentity | None:
    """The sensor a presented token belongs to; None for unknown, rotated-out or deleted ones."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > TOKEN_MAX_LENGTH:
        return None
    digest = token_hash(token)
    row = await store.fetch_sensor_by_token_hash(conn, token_hash=digest)
    if row is None:
        return None
    current = hashes_equal(bytes(row["token_hash"]), digest)
    previous = row["previous_token_hash"]
    if not current and not (previous is not None and hashes_equal(bytes(previous), digest)):
        return None
    return SensorIdentity(
        sensor_id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        expected_rate_hz=row["expected_rate_hz"],
        rate_points_per_s=row["rate_points_per_s"],
        burst_points=row["burst_points"],
        via_previous_token=not current,
        valid_for_s=None if current else row["valid_for_s"],
    )


class SensorTokenCache:
    """An in-process TTL cache of token look-ups, keyed by the token's SHA-256.

    Only found sensors are cached (an unknown token costs one unique-index look-up). An entry
    for a previous token never outlives its grace period.
    """

    def __init__(
        self,
        ttl_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, SensorIdentity]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: bytes) -> SensorIdentity | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        expires_at, identity = entry
        if self._clock() >= expires_at:
            del self._entries[token_hash]
            return None
        self._entries.move_to_end(token_hash)
        return identity

    def put(self, token_hash: bytes, identity: SensorIdentity) -> None:
        ttl_s = self.ttl_s
        if identity.valid_for_s is not None:
            ttl_s = min(ttl_s, identity.valid_for_s)
        if ttl_s <= 0:
            return
        self._entries[token_hash] = (self._clock() + ttl_s, identity)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate_sensor(self, sensor_id: UUID | str) -> int:
        """Drops every cached token of a sensor; returns how many entries went."""
        target = UUID(str(sensor_id))
        stale = [key for key, (_, ident) in self._entries.items() if ident.sensor_id == target]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def handle_message(self, payload: bytes | str) -> int:
        """Applies a message from ``sensor_token_revoked_channel()``; malformed ones are logged."""
        try:
            sensor_id = UUID(str(orjson.loads(payload)["sensor_id"]))
        except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
            log.warning(
                "ignored a malformed sensor token message", extra={"payload": str(payload)[:200]}
            )
            return 0
        return self.invalidate_sensor(sensor_id)

    def clear(self) -> None:
        self._entries.clear()


async def resolve_sensor_token_cached(
    db: Database, cache: SensorTokenCache, token: str
) -> SensorIdentity | None:
    """``resolve_sensor_token`` through the cache; a hit takes no database connection."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > TOKEN_MAX_LENGTH:
        return None
    digest = token_hash(token)
    identity = cache.get(digest)
    if identity is not None:
        return identity
    async with db.acquire() as conn:
        identity = await resolve_sensor_token(conn, token)
    if identity is not None:
        cache.put(digest, identity)
    return identity


async def publish_sensor_token_revoked(redis: Publisher | None, sensor_id: UUID) -> bool:
    """Tells every process to drop the sensor's cached tokens; Redis being down is logged only
    (other processes then hold the old look-up for at most the cache TTL)."""
    if redis is None:
        return False
    try:
        await redis.publish(
            sensor_token_revoked_channel(), orjson.dumps({"sensor_id": str(sensor_id)})
        )
    except Exception as exc:
        log.warning("could not publish a sensor token revocation", extra={"error": str(exc)[:200]})
        return False
    return True


# Changes ------------------------------------------------------------------------------------


def _strs(ids: list[UUID]) -> list[str]:
    return [str(i) for i in ids]


async def _record(
    conn: asyncpg.Connection,
    audit: AuditContext,
    role: str | None,
    action: str,
    sensor: Mapping[str, Any],
    *,
    project_id: UUID | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """An audit entry about ``sensor``, in its home project unless ``project_id`` says."""
    await audit_store.insert_audit_event(
        conn,
        project_id=project_id or sensor["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="sensor",
        entity_id=sensor["id"],
        before=before,
        after=after,
        request_id=audit.request_id,
    )


def _audited(row: Mapping[str, Any], fields: set[str] | frozenset[str]) -> dict[str, Any]:
    return {field: row[field] for field in sorted(fields)}


async def create_sensor(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    role: str,
    values: Mapping[str, Any],
    audit: AuditContext,
) -> tuple[str, asyncpg.Record]:
    """Registers a sensor; returns (the token, shown this once, the sensor row)."""
    clean = clean_sensor_fields(values, creating=True)
    token, digest, preview = new_token(TOKEN_PREFIX, TOKEN_BYTES)
    async with conn.transaction():
        row = await store.insert_sensor(
            conn,
            project_id=project_id,
            values=clean,
            token_hash=digest,
            token_preview=preview,
            created_by=audit.actor_id,
        )
        await _record(
            conn, audit, role, "sensor.created", row, after=_audited(row, store.UPDATABLE)
        )
    return token, row


async def update_sensor(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    role: str,
    changes: Mapping[str, Any],
    audit: AuditContext,
) -> asyncpg.Record:
    clean = clean_sensor_fields(changes, creating=False)
    async with conn.transaction():
        before = await store.lock_sensor(conn, sensor_id=sensor_id)
        if before is None:
            raise NotFound("sensor not found")
        row = await store.update_sensor(conn, sensor_id=sensor_id, changes=clean)
        assert row is not None
        changed = _audited(before, set(clean))
        await _record(conn, audit, role, "sensor.updated", row, before=changed, after=clean)
    return row


async def rotate_token(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    role: str,
    grace_period_s: int,
    audit: AuditContext,
) -> tuple[str, asyncpg.Record]:
    """A new token; the old one stops working now, or after ``grace_period_s`` (≤ 600)."""
    if isinstance(grace_period_s, bool) or not 0 <= grace_period_s <= GRACE_PERIOD_MAX_S:
        raise _invalid(
            f"grace_period_s must be a whole number from 0 to {GRACE_PERIOD_MAX_S}",
            "grace_period_s",
        )
    token, digest, preview = new_token(TOKEN_PREFIX, TOKEN_BYTES)
    async with conn.transaction():
        row = await store.replace_token(
            conn,
            sensor_id=sensor_id,
            token_hash=digest,
            token_preview=preview,
            grace_period_s=grace_period_s,
        )
        if row is None:
            raise NotFound("sensor not found")
        after = {"token_preview": preview, "grace_period_s": grace_period_s}
        await _record(conn, audit, role, "sensor.token_rotated", row, after=after)
    return token, row


async def delete_sensor(
    conn: asyncpg.Connection, *, sensor_id: UUID, role: str, audit: AuditContext
) -> None:
    """Deletes a sensor (its token stops working); refused while a capture session uses it."""
    async with conn.transaction():
        row = await store.lock_sensor(conn, sensor_id=sensor_id)
        if row is None:
            raise NotFound("sensor not found")
        running = await store.list_running_sessions_using(conn, sensor_id=sensor_id)
        if running:
            raise Conflict(
                "the sensor is attached to a running capture session; stop it first",
                details={"capture_session_ids": [str(r["id"]) for r in running]},
            )
        await store.delete_sensor(conn, sensor_id=sensor_id)
        before = _audited(row, {"name", "type"})
        await _record(conn, audit, role, "sensor.deleted", row, before=before)


async def share_sensor(
    conn: asyncpg.Connection,
    *,
    sensor_id: UUID,
    project_ids: list[UUID],
    role: str,
    audit: AuditContext,
) -> list[UUID]:
    """Sets the projects a sensor is shared with (besides its home); returns them.

    Projects being added need the caller's membership (else 404 naming the project). A share
    is not removed while a running capture session of that project uses the sensor.
    """
    wanted = list(dict.fromkeys(project_ids))
    if len(wanted) > SHARE_MAX_PROJECTS:
        raise _invalid(f"project_ids: at most {SHARE_MAX_PROJECTS}", "project_ids")
    assert audit.actor_id is not None
    async with conn.transaction():
        sensor = await store.lock_sensor(conn, sensor_id=sensor_id)
        if sensor is None:
            raise NotFound("sensor not found")
        home = UUID(str(sensor["project_id"]))
        if home in wanted:
            raise _invalid("project_ids must not contain the sensor's home project", "project_ids")
        current = [UUID(str(p)) for p in sensor["shared_project_ids"]]
        added = [p for p in wanted if p not in current]
        removed = [p for p in current if p not in wanted]
        member_of = await store.list_member_projects(
            conn, user_id=audit.actor_id, project_ids=added
        )
        for project_id in added:
            if project_id not in member_of:
                raise NotFound(
                    f"project {project_id} not found",
                    details={"field": "project_ids", "project_id": str(project_id)},
                )
        if removed:
            running = await store.list_running_sessions_using(
                conn, sensor_id=sensor_id, project_ids=removed
            )
            if running:
                raise Conflict(
                    "a running capture session of a project being removed uses the sensor",
                    details={"capture_session_ids": [str(r["id"]) for r in running]},
                )
            await store.remove_shared_projects(conn, sensor_id=sensor_id, project_ids=removed)
        if added:
            await store.add_shared_projects(conn, sensor_id=sensor_id, project_ids=added)
        shared: dict[str, Any] = {"home_project_id": str(home)}
        events: list[tuple[UUID, str, Any, Any]] = [
            (home, "sensor.shared", {"project_ids": _strs(current)}, {"project_ids": _strs(wanted)})
        ]
        events += [(p, "sensor.share_added", None, shared) for p in added]
        events += [(p, "sensor.share_removed", shared, None) for p in removed]
        for project_id, action, b, a in events:
            actor_role = role if project_id == home else None
            await _record(
                conn, audit, actor_role, action, sensor, project_id=project_id, before=b, after=a
            )
    return wanted
