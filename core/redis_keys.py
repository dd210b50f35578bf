"""Every Redis key and pub/sub channel name the project uses, in one place."""

from __future__ import annotations

import hashlib
from uuid import UUID

PREFIX = "etp"


def live_sensor_channel(sensor_id: UUID | str) -> str:
    return f"live:sensor:{sensor_id}"


def live_session_channel(capture_session_id: UUID | str) -> str:
    return f"live:session:{capture_session_id}"


def live_run_metrics_channel(run_id: UUID | str) -> str:
    return f"live:run-metrics:{run_id}"


def sensor_status_channel() -> str:
    return "events:sensor-status"


def revocation_channel() -> str:
    """Membership/session/token revocations; api processes close the affected streams."""
    return "events:revocations"


def rate_limit_prefix() -> str:
    return f"{PREFIX}:ratelimit"


def arq_queue() -> str:
    return "arq:queue:etp"


def sensor_token_revoked_channel() -> str:
    """Sensor token rotations/deletions; every process drops its cached token look-ups."""
    return "events:sensor-tokens"


def ws_ticket_key(ticket: str) -> str:
    """A single-use WebSocket ticket (short TTL), keyed by its SHA-256 (never the ticket)."""
    return f"{PREFIX}:ws-ticket:{hashlib.sha256(ticket.encode()).hexdigest()}"
