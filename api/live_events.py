"""Publishing events that open live streams react to (revocations close streams)."""

from __future__ import annotations

import logging
from uuid import UUID

import orjson

from api.state import services
from core.redis_keys import revocation_channel

log = logging.getLogger("etp.api")


async def publish_revocation(
    *,
    user_id: UUID,
    project_id: UUID | None = None,
    session_id: UUID | None = None,
    token_id: UUID | None = None,
) -> None:
    """Tells every api process that a user's access changed; Redis being down is logged only."""
    client = services().redis
    if client is None:
        return
    message = {
        "user_id": str(user_id),
        "project_id": str(project_id) if project_id else None,
        "session_id": str(session_id) if session_id else None,
        "token_id": str(token_id) if token_id else None,
    }
    try:
        await client.publish(revocation_channel(), orjson.dumps(message))
    except Exception as exc:  # live fan-out pauses without Redis; the change itself stands
        log.warning("could not publish a revocation", extra={"error": str(exc)[:200]})
