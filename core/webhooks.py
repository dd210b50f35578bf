"""Webhook subscriptions and Standard Webhooks signing.

Every delivery carries ``webhook-id`` (stable per event and subscription across retries),
``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`` where ``key`` is the base64-decoded
part of the ``whsec_...`` secret. While a rotated-out secret is still in its overlap window,
both signatures are sent, space-separated, the current one first.

Secrets are shown once (on create and rotate). They are stored recoverably because signing
needs them; ``seal_secret``/``open_secret`` are the one place that changes when encryption at
rest arrives. They are never logged and never in audit records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.errors import InvalidInput, NotFound
from core.jobs import WorkerConfig
from core.outbox import PING_EVENT, is_valid_event_filter
from core.principal import AuditContext
from core.ssrf import Allowlist, UrlRefused, check_url
from core.stores import audit as audit_store
from core.stores import webhooks as store

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64
URL_MAX = 2000
EVENT_TYPES_MAX = 50
DESCRIPTION_MAX = 1000
OVERLAP_MAX_S = 7 * 24 * 3600
TIMESTAMP_TOLERANCE_S = 300


# Secrets and signatures -------------------------------------------------------------------


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal_secret(secret: str) -> str:
    """The stored form of a secret (plain for now; AES-GCM at rest replaces this one place)."""
    return secret


def open_secret(stored: str) -> str:
    """The secret from its stored form (the inverse of ``seal_secret``)."""
    return stored


def secret_preview(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 4] + "…"


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``{id}.{timestamp}.{body}``."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    signing_secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> str:
    return " ".join(sign(s, webhook_id, timestamp, body) for s in signing_secrets)


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now_s: float | None = None
) -> bool:
    """What a receiver does: any of the listed signatures matches and the timestamp is fresh."""
    webhook_id = headers.get("webhook-id", "")
    raw_ts = headers.get("webhook-timestamp", "")
    if not webhook_id or not raw_ts.isdigit():
        return False
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - int(raw_ts)) > TIMESTAMP_TOLERANCE_S:
        return False
    expected = sign(secret, webhook_id, int(raw_ts), body)
    return any(
        hmac.compare_digest(candidate, expected)
        for candidate in headers.get("webhook-signature", "").split(" ")
    )


def signing_secrets(subscription: Mapping[str, Any], now: datetime) -> list[str]:
    """The current secret, then the previous one while its overlap lasts."""
    found = [open_secret(subscription["secret"])]
    expires = subscription["previous_secret_expires_at"]
    if subscription["previous_secret"] and expires is not None and expires > now:
        found.append(open_secret(subscription["previous_secret"]))
    return found


# Messages and retries ---------------------------------------------------------------------


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def event_body(event_type: str, payload: Any, created_at: datetime) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return orjson.dumps(
        {"type": event_type, "timestamp": created_at.isoformat(), "data": payload}
    ).decode()


def retry_delay_s(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter after failed attempt ``attempt`` (1-based): half the
    step is fixed, half random, so retries of many messages spread out."""
    step = min(config.webhook_retry_max_delay_s, config.webhook_retry_base_s * 2 ** (attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)


def next_retry_delay_s(
    attempt: int, created_at: datetime, now: datetime, config: WorkerConfig
) -> float | None:
    """The delay before the next attempt, or None when the retry window is used up."""
    delay = retry_delay_s(attempt, config)
    deadline = created_at + timedelta(seconds=config.webhook_retry_window_s)
    return delay if now + timedelta(seconds=delay) <= deadline else None


# Subscriptions ----------------------------------------------------------------------------


def clean_url(url: str, allowlist: Allowlist) -> str:
    url = url.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(f"url must have at most {URL_MAX} characters", details={"field": "url"})
    try:
        check_url(url, allowlist)
    except UrlRefused as exc:
        raise InvalidInput(f"url is not allowed: {exc}", details={"field": "url"}) from None
    return url


def clean_event_types(values: Sequence[str]) -> list[str]:
    if not values:
        raise InvalidInput(
            "event_types needs at least one entry ('*' for every event)",
            details={"field": "event_types"},
        )
    if len(values) > EVENT_TYPES_MAX:
        raise InvalidInput(
            f"event_types: at most {EVENT_TYPES_MAX}", details={"field": "event_types"}
        )
    bad = [value for value in values if not is_valid_event_filter(value)]
    if bad:
        raise InvalidInput(
            f"unknown event type {bad[0]!r}; see GET /webhooks/event-types",
            details={"field": "event_types", "unknown": bad},
        )
    return sorted(set(values))


def _audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "is_active": row["is_active"],
        "description": row["description"],
    }


async def _audit(
    conn: asyncpg.Connection,
    audit: AuditContext,
    role: str | None,
    action: str,
    row: Mapping[str, Any],
    before: Any = None,
    after: Any = None,
) -> None:
    await audit_store.insert_audit_event(
        conn,
        project_id=row["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="webhook",
        entity_id=row["id"],
        before=before,
        after=after,
        request_id=audit.request_id,
    )


async def create_subscription(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    role: str,
    fields: Mapping[str, Any],
    allowlist: Allowlist,
    audit: AuditContext,
) -> tuple[asyncpg.Record, str]:
    """A new subscription and its secret (returned once, never again)."""
    secret = generate_secret()
    description = str(fields.get("description", ""))[:DESCRIPTION_MAX]
    async with conn.transaction():
        row = await store.insert_subscription(
            conn,
            project_id=project_id,
            url=clean_url(fields["url"], allowlist),
            event_types=clean_event_types(fields["event_types"]),
            is_active=bool(fields.get("is_active", True)),
            description=description,
            secret=seal_secret(secret),
            created_by=audit.actor_id,
        )
        await _audit(conn, audit, role, "webhook.created", row, after=_audit_view(row))
    return row, secret


async def update_subscription(
    conn: asyncpg.Connection,
    *,
    webhook_id: UUID,
    role: str,
    changes: Mapping[str, Any],
    allowlist: Allowlist,
    audit: AuditContext,
) -> asyncpg.Record:
    clean: dict[str, Any] = {}
    if changes.get("url") is not None:
        clean["url"] = clean_url(changes["url"], allowlist)
    if changes.get("event_types") is not None:
        clean["event_types"] = clean_event_types(changes["event_types"])
    if changes.get("is_active") is not None:
        clean["is_active"] = bool(changes["is_active"])
    if changes.get("description") is not None:
        clean["description"] = str(changes["description"])[:DESCRIPTION_MAX]
    async with conn.transaction():
        before = await store.fetch_subscription(conn, webhook_id=webhook_id, lock=True)
        if before is None:
            raise NotFound("webhook not found")
        row = await store.update_subscription(conn, webhook_id=webhook_id, changes=clean)
        await _audit(
            conn, audit, role, "webhook.updated", row, _audit_view(before), _audit_view(row)
        )
    return row


async def delete_subscription(
    conn: asyncpg.Connection, *, webhook_id: UUID, role: str, audit: AuditContext
) -> None:
    async with conn.transaction():
        row = await store.delete_subscription(conn, webhook_id=webhook_id)
        if row is None:
            raise NotFound("webhook not found")
        await _audit(conn, audit, role, "webhook.deleted", row, before=_audit_view(row))


async def rotate_secret(
    conn: asyncpg.Connection,
    *,
    webhook_id: UUID,
    role: str,
    overlap_s: int,
    audit: AuditContext,
) -> tuple[asyncpg.Record, str]:
    """A new secret; the old one keeps signing (second signature) for ``overlap_s``."""
    if not 0 <= overlap_s <= OVERLAP_MAX_S:
        raise InvalidInput(
            f"overlap_s must be from 0 to {OVERLAP_MAX_S}", details={"field": "overlap_s"}
        )
    secret = generate_secret()
    async with conn.transaction():
        row = await store.rotate_secret(
            conn, webhook_id=webhook_id, secret=seal_secret(secret), overlap_s=overlap_s
        )
        if row is None:
            raise NotFound("webhook not found")
        await _audit(
            conn, audit, role, "webhook.secret_rotated", row, after={"overlap_s": overlap_s}
        )
    return row, secret


async def create_ping(
    conn: asyncpg.Connection, *, webhook_id: UUID, role: str, audit: AuditContext
) -> asyncpg.Record:
    """A ``webhook.ping`` message for one subscription (the worker sends it)."""
    async with conn.transaction():
        subscription = await store.fetch_subscription(conn, webhook_id=webhook_id)
        if subscription is None:
            raise NotFound("webhook not found")
        now = await conn.fetchval("SELECT now()")
        payload = {"webhook": str(webhook_id), "project_id": str(subscription["project_id"])}
        message = await store.insert_message(
            conn,
            subscription_id=webhook_id,
            webhook_id=new_webhook_id(),
            event_type=PING_EVENT,
            body=event_body(PING_EVENT, payload, now),
        )
        await _audit(
            conn,
            audit,
            role,
            "webhook.pinged",
            subscription,
            after={"webhook_id": message["webhook_id"]},
        )
    return message
