"""Every Redis key and pub/sub channel name the project uses, in one place."""

from __future__ import annotations

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


def sensor_token_cache(token_hash_hex: str) -> str:
    return f"{PREFIX}:sensor-token:{token_hash_hex}"


def rate_limit_prefix() -> str:
    return f"{PREFIX}:ratelimit"


def arq_queue() -> str:
    return "arq:queue:etp"
