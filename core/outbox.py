"""Domain events, written to the ``outbox`` table in the same transaction as the change.

The worker's relay (``relay_outbox``) fans each row out into one webhook message per matching
subscription and marks the row done; nothing is sent from inside a request. Call
``write_event`` inside the transaction that makes the change, so the event exists exactly when
the change does.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import asyncpg

# The catalogue subscriptions choose from. Add a name here when code starts emitting it.
EVENT_TYPES: tuple[str, ...] = (
    "run.status_changed",
    "capture_session.started",
    "capture_session.stopped",
    "capture_session.failed",
    "sensor.status_changed",
    "profile.activated",
    "backfill.started",
    "backfill.finished",
    "backfill.failed",
    "export.ready",
    "export.failed",
)
PING_EVENT = "webhook.ping"
ALL_EVENTS = "*"
_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")


async def write_event(
    conn: asyncpg.Connection, *, project_id: UUID | None, event_type: str, payload: Any
) -> int:
    """Records one event; call it inside the transaction of the change. Returns its id."""
    event_id = await conn.fetchval(
        "INSERT INTO outbox (project_id, event_type, payload) VALUES ($1, $2, $3) RETURNING id",
        project_id,
        event_type,
        payload,
    )
    assert event_id is not None
    return int(event_id)


def is_valid_event_filter(value: str) -> bool:
    """``*``, ``<area>.*`` or an exact name of the catalogue."""
    if not _PATTERN.match(value):
        return False
    if value == ALL_EVENTS:
        return True
    if value.endswith(".*"):
        area = value[:-1]
        return any(name.startswith(area) for name in EVENT_TYPES)
    return value in EVENT_TYPES


def event_matches(filters: list[str] | tuple[str, ...], event_type: str) -> bool:
    """Whether a subscription with ``filters`` receives ``event_type``."""
    for item in filters:
        if item in (ALL_EVENTS, event_type):
            return True
        if item.endswith(".*") and event_type.startswith(item[:-1]):
            return True
    return False
