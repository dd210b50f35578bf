"""Sensor status (online / delayed / offline / never_seen) from the last heartbeat.

The status is always computed from ``sensors.last_seen_at`` (set by the telemetry pipeline when
it commits points) and the sensor's expected rate; nothing a user can edit feeds into it.

Thresholds (ADR 0005):
- ``delayed`` once the sensor has been silent for longer than
  ``max(delayed_after_s, delayed_missed_intervals / expected_rate_hz)``; without an expected
  rate, longer than ``delayed_after_s``. The floor exists because clients send in batches
  (Telegraf flushes every 10 s by default): three intervals of a 100 Hz sensor would flap.
- ``offline`` once silent for longer than ``max(offline_after_s, 2 × delayed threshold)``, so a
  slow sensor (one point a minute) is never offline before it could even be late.
- ``never_seen`` when no point was ever accepted. A ``last_seen_at`` in the future (clock skew)
  counts as just seen.

``sweep_sensor_statuses`` stores the status last reported (``sensors.reported_status``) and
records each change in the outbox, so webhooks fire once per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import orjson

from core.redis_keys import sensor_status_channel
from core.settings import Settings

log = logging.getLogger("etp.sensors")

ONLINE = "online"
DELAYED = "delayed"
OFFLINE = "offline"
NEVER_SEEN = "never_seen"
STATUSES = (ONLINE, DELAYED, OFFLINE, NEVER_SEEN)
STATUS_CHANGED_EVENT = "sensor.status_changed"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock (tests pass their own ``Clock``/``now`` instead)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StatusThresholds:
    delayed_missed_intervals: int = 3
    delayed_after_s: float = 10.0
    offline_after_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> StatusThresholds:
        return cls(
            delayed_missed_intervals=settings.sensor_delayed_missed_intervals,
            delayed_after_s=settings.sensor_delayed_after_s,
            offline_after_s=settings.sensor_offline_after_s,
        )

    def delayed_threshold_s(self, expected_rate_hz: float | None) -> float:
        if not expected_rate_hz:
            return self.delayed_after_s
        return max(self.delayed_after_s, self.delayed_missed_intervals / expected_rate_hz)

    def offline_threshold_s(self, expected_rate_hz: float | None) -> float:
        return max(self.offline_after_s, 2 * self.delayed_threshold_s(expected_rate_hz))


def compute_status(
    last_seen_at: datetime | None,
    expected_rate_hz: float | None,
    now: datetime,
    thresholds: StatusThresholds,
) -> str:
    """The sensor's status at ``now`` (see the module docstring for the rule)."""
    if last_seen_at is None:
        return NEVER_SEEN
    silent_s = (now - last_seen_at).total_seconds()
    if silent_s > thresholds.offline_threshold_s(expected_rate_hz):
        return OFFLINE
    if silent_s > thresholds.delayed_threshold_s(expected_rate_hz):
        return DELAYED
    return ONLINE


def status_sql(alias: str = "s", first_param: int = 1) -> str:
    """The same rule as ``compute_status`` in SQL, for filtering lists by status.

    Takes four parameters from ``first_param``: now, delayed_after_s, delayed_missed_intervals,
    offline_after_s (see ``status_sql_args``).
    """
    now, delayed_s, missed, offline_s = (f"${first_param + i}" for i in range(4))
    silent = f"extract(epoch FROM ({now}::timestamptz - {alias}.last_seen_at))"
    delayed = (
        f"(CASE WHEN {alias}.expected_rate_hz IS NULL THEN {delayed_s}::float8 "
        f"ELSE greatest({delayed_s}::float8, {missed}::float8 / {alias}.expected_rate_hz) END)"
    )
    return (
        f"(CASE WHEN {alias}.last_seen_at IS NULL THEN '{NEVER_SEEN}' "
        f"WHEN {silent} > greatest({offline_s}::float8, 2 * {delayed}) THEN '{OFFLINE}' "
        f"WHEN {silent} > {delayed} THEN '{DELAYED}' ELSE '{ONLINE}' END)"
    )


def status_sql_args(now: datetime, thresholds: StatusThresholds) -> tuple[Any, ...]:
    return (
        now,
        thresholds.delayed_after_s,
        thresholds.delayed_missed_intervals,
        thresholds.offline_after_s,
    )


# Sweeping and publishing changes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusTransition:
    sensor_id: UUID
    project_id: UUID
    name: str
    previous: str
    status: str
    last_seen_at: datetime | None
    at: datetime

    def payload(self) -> dict[str, Any]:
        """The event body, the same in the outbox (webhooks) and on Redis."""
        return {
            "sensor_id": str(self.sensor_id),
            "project_id": str(self.project_id),
            "name": self.name,
            "previous_status": self.previous,
            "status": self.status,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "at": self.at.isoformat(),
        }


async def sweep_sensor_statuses(
    conn: asyncpg.Connection, *, now: datetime, settings: Settings
) -> list[StatusTransition]:
    """Stores every changed status and writes one outbox row per change, in one transaction.

    The update is a compare-and-set on the previous status, so two concurrent sweeps never
    report the same change twice. Publish the result with ``publish_status_transitions``.
    """
    thresholds = StatusThresholds.from_settings(settings)
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, project_id, name, last_seen_at, expected_rate_hz, reported_status "
            "FROM sensors"
        )
        candidates = {
            row["id"]: StatusTransition(
                sensor_id=row["id"],
                project_id=row["project_id"],
                name=row["name"],
                previous=row["reported_status"],
                status=compute_status(
                    row["last_seen_at"], row["expected_rate_hz"], now, thresholds
                ),
                last_seen_at=row["last_seen_at"],
                at=now,
            )
            for row in rows
        }
        changed = [t for t in candidates.values() if t.status != t.previous]
        if not changed:
            return []
        updated = await conn.fetch(
            "UPDATE sensors s SET reported_status = c.status "
            "FROM unnest($1::uuid[], $2::text[], $3::text[]) AS c(id, previous, status) "
            "WHERE s.id = c.id AND s.reported_status = c.previous RETURNING s.id",
            [t.sensor_id for t in changed],
            [t.previous for t in changed],
            [t.status for t in changed],
        )
        done = {row["id"] for row in updated}
        transitions = [t for t in changed if t.sensor_id in done]
        await conn.executemany(
            "INSERT INTO outbox (project_id, event_type, payload) VALUES ($1, $2, $3)",
            [(t.project_id, STATUS_CHANGED_EVENT, t.payload()) for t in transitions],
        )
    return transitions


class Publisher(Protocol):
    """What publishing needs of a Redis client (``redis.asyncio.Redis`` fits)."""

    def publish(self, channel: str, message: bytes) -> Any: ...


async def publish_status_transitions(
    redis: Publisher | None, transitions: Sequence[StatusTransition]
) -> int:
    """Publishes each change on ``sensor_status_channel()``; Redis being down is logged only."""
    if redis is None:
        return 0
    sent = 0
    for transition in transitions:
        message = {"type": STATUS_CHANGED_EVENT, **transition.payload()}
        try:
            await redis.publish(sensor_status_channel(), orjson.dumps(message))
        except Exception as exc:  # the outbox row is the durable record; live views catch up
            log.warning("could not publish a sensor status", extra={"error": str(exc)[:200]})
            return sent
        sent += 1
    return sent
