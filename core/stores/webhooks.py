"""Webhook subscriptions, messages (one per event and subscription), delivery attempts, and the
outbox relay's fan-out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

SUBSCRIPTION_COLUMNS = (
    "w.id, w.project_id, w.url, w.event_types, w.is_active, w.description, w.secret, "
    "w.previous_secret, w.previous_secret_expires_at, w.created_by, w.created_at, w.updated_at"
)
MESSAGE_COLUMNS = (
    "m.id, m.subscription_id, m.outbox_id, m.webhook_id, m.event_type, m.body, m.status, "
    "m.attempts, m.next_attempt_at, m.created_at, m.finished_at"
)
DELIVERY_COLUMNS = (
    "d.id, d.subscription_id, d.message_id, d.webhook_id, d.event_type, d.attempt, d.status, "
    "d.response_code, d.latency_ms, d.response_body, d.error, d.created_at"
)
_UPDATABLE = ("url", "event_types", "is_active", "description")


# Subscriptions ----------------------------------------------------------------------------


async def insert_subscription(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    url: str,
    event_types: Sequence[str],
    is_active: bool,
    description: str,
    secret: str,
    created_by: UUID | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO webhook_subscriptions AS w (project_id, url, event_types, is_active, "
        "description, secret, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        f"RETURNING {SUBSCRIPTION_COLUMNS}",
        project_id,
        url,
        list(event_types),
        is_active,
        description,
        secret,
        created_by,
    )
    assert row is not None
    return row


async def fetch_subscription(
    conn: asyncpg.Connection, *, webhook_id: UUID, lock: bool = False
) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions w WHERE w.id = $1"
        + (" FOR UPDATE" if lock else ""),
        webhook_id,
    )


async def list_subscriptions(
    conn: asyncpg.Connection, *, project_id: UUID, limit: int, after: tuple[datetime, UUID] | None
) -> list[Record]:
    """Newest first."""
    return await conn.fetch(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions w WHERE w.project_id = $1 "
        "AND ($2::timestamptz IS NULL OR (w.created_at, w.id) < ($2, $3)) "
        "ORDER BY w.created_at DESC, w.id DESC LIMIT $4",
        project_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def update_subscription(
    conn: asyncpg.Connection, *, webhook_id: UUID, changes: Mapping[str, Any]
) -> Record:
    names = [name for name in _UPDATABLE if name in changes]
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    row = await conn.fetchrow(
        f"UPDATE webhook_subscriptions AS w SET {assignments + ', ' if names else ''}"
        f"updated_at = now() WHERE w.id = $1 RETURNING {SUBSCRIPTION_COLUMNS}",
        webhook_id,
        *[changes[name] for name in names],
    )
    assert row is not None
    return row


async def delete_subscription(conn: asyncpg.Connection, *, webhook_id: UUID) -> Record | None:
    return await conn.fetchrow(
        f"DELETE FROM webhook_subscriptions AS w WHERE w.id = $1 RETURNING {SUBSCRIPTION_COLUMNS}",
        webhook_id,
    )


async def rotate_secret(
    conn: asyncpg.Connection, *, webhook_id: UUID, secret: str, overlap_s: int
) -> Record | None:
    return await conn.fetchrow(
        "UPDATE webhook_subscriptions AS w SET previous_secret = w.secret, secret = $2, "
        "previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now() "
        f"WHERE w.id = $1 RETURNING {SUBSCRIPTION_COLUMNS}",
        webhook_id,
        secret,
        float(overlap_s),
    )


async def list_deliveries(
    conn: asyncpg.Connection,
    *,
    webhook_id: UUID,
    limit: int,
    before_id: int | None,
    status: str | None,
) -> list[Record]:
    """Attempts, newest first."""
    return await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.subscription_id = $1 "
        "AND ($2::bigint IS NULL OR d.id < $2) AND ($3::text IS NULL OR d.status = $3) "
        "ORDER BY d.id DESC LIMIT $4",
        webhook_id,
        before_id,
        status,
        limit,
    )


# Relay: outbox -> messages ----------------------------------------------------------------


async def lock_pending_events(conn: asyncpg.Connection, *, limit: int) -> list[Record]:
    """Undone outbox rows, oldest first, locked; concurrent relays skip each other's rows."""
    return await conn.fetch(
        "SELECT id, project_id, event_type, payload, created_at FROM outbox "
        "WHERE done_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


async def list_active_subscriptions(
    conn: asyncpg.Connection, *, project_ids: Sequence[UUID]
) -> list[Record]:
    return await conn.fetch(
        "SELECT id, project_id, event_types FROM webhook_subscriptions "
        "WHERE project_id = ANY($1::uuid[]) AND is_active",
        list(project_ids),
    )


async def insert_messages(
    conn: asyncpg.Connection, messages: Sequence[tuple[int, UUID, str, str, str]]
) -> list[Record]:
    """(outbox id, subscription id, webhook id, event type, body) rows; a pair already fanned
    out is skipped. Returns the new messages' (id, attempts), marked as enqueued now."""
    if not messages:
        return []
    columns = list(zip(*messages, strict=True))
    return await conn.fetch(
        "INSERT INTO webhook_messages (outbox_id, subscription_id, webhook_id, event_type, body, "
        "enqueued_at) SELECT o, s, w, e, b, now() FROM unnest($1::bigint[], $2::uuid[], "
        "$3::text[], $4::text[], $5::text[]) AS t(o, s, w, e, b) "
        "ON CONFLICT (outbox_id, subscription_id) DO NOTHING RETURNING id, attempts, enqueue_gen",
        *[list(column) for column in columns],
    )


async def insert_message(
    conn: asyncpg.Connection, *, subscription_id: UUID, webhook_id: str, event_type: str, body: str
) -> Record:
    """A message outside the outbox (pings), marked enqueued: the caller enqueues it after the
    commit, and the relay's sweep does if that fails."""
    row = await conn.fetchrow(
        "INSERT INTO webhook_messages AS m (subscription_id, webhook_id, event_type, body, "
        f"enqueued_at) VALUES ($1, $2, $3, $4, now()) RETURNING {MESSAGE_COLUMNS}",
        subscription_id,
        webhook_id,
        event_type,
        body,
    )
    assert row is not None
    return row


async def mark_events_done(conn: asyncpg.Connection, *, event_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE outbox SET done_at = now(), enqueued_at = coalesce(enqueued_at, now()), "
        "relay_attempts = relay_attempts + 1 WHERE id = ANY($1::bigint[])",
        list(event_ids),
    )


async def reclaim_lost_attempts(conn: asyncpg.Connection, *, limit: int) -> list[Record]:
    """Messages whose in-flight attempt outlived its lease (the worker died): the attempt is
    recorded as lost and the message is due again. Returns (id, attempts)."""
    return await conn.fetch(
        "WITH lost AS (SELECT id FROM webhook_messages WHERE status = 'delivering' "
        "AND lease_until < now() ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED), "
        "recorded AS (INSERT INTO webhook_deliveries (subscription_id, message_id, outbox_id, "
        "webhook_id, event_type, attempt, status, error) SELECT m.subscription_id, m.id, "
        "m.outbox_id, m.webhook_id, m.event_type, m.attempts, 'retrying', "
        "'the worker stopped during this attempt' FROM webhook_messages m JOIN lost USING (id) "
        "ON CONFLICT (message_id, attempt) DO NOTHING) "
        "UPDATE webhook_messages m SET status = 'pending', lease_until = NULL, "
        "next_attempt_at = now(), enqueued_at = now() FROM lost WHERE m.id = lost.id "
        "RETURNING m.id, m.attempts, m.enqueue_gen",
        limit,
    )


async def claim_due_messages(
    conn: asyncpg.Connection, *, stale_s: float, limit: int
) -> list[Record]:
    """Pending messages that are due and whose job has not run for ``stale_s`` (never enqueued,
    lost, or stuck); marks them looked at now. Returns (id, attempts, enqueue_gen)."""
    return await conn.fetch(
        "UPDATE webhook_messages m SET enqueued_at = now() WHERE m.id IN ("
        "SELECT id FROM webhook_messages WHERE status = 'pending' AND next_attempt_at <= now() "
        "AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $1)) "
        "ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
        "RETURNING m.id, m.attempts, m.enqueue_gen",
        stale_s,
        limit,
    )


async def next_enqueue_gen(conn: asyncpg.Connection, *, message_id: int) -> int:
    """A new generation for re-enqueuing a message whose job is gone or stuck."""
    return int(
        await conn.fetchval(
            "UPDATE webhook_messages SET enqueue_gen = enqueue_gen + 1 WHERE id = $1 "
            "RETURNING enqueue_gen",
            message_id,
        )
        or 0
    )


# Delivery ---------------------------------------------------------------------------------


async def claim_message(
    conn: asyncpg.Connection, *, message_id: int, attempt: int, lease_s: float
) -> Record | None:
    """Starts attempt ``attempt`` if the message is waiting for exactly that attempt; with its
    subscription. None: a duplicate or stale job (nothing to do)."""
    return await conn.fetchrow(
        "WITH claimed AS (UPDATE webhook_messages SET status = 'delivering', attempts = $2, "
        "lease_until = now() + make_interval(secs => $3) "
        "WHERE id = $1 AND status = 'pending' AND attempts = $2 - 1 RETURNING *) "
        "SELECT c.id, c.subscription_id, c.outbox_id, c.webhook_id, c.event_type, c.body, "
        "c.attempts, c.enqueue_gen, c.created_at, w.url, w.is_active, w.secret, w.previous_secret, "
        "w.previous_secret_expires_at, now() AS now "
        "FROM claimed c JOIN webhook_subscriptions w ON w.id = c.subscription_id",
        message_id,
        attempt,
        float(lease_s),
    )


async def finish_attempt(
    conn: asyncpg.Connection,
    *,
    message: Mapping[str, Any],
    status: str,
    response_code: int | None,
    latency_ms: float | None,
    response_body: str | None,
    error: str | None,
    retry_in_s: float | None,
) -> bool:
    """Records the attempt and moves the message on: ``succeeded``, ``failed`` or ``retrying``
    (pending again, due in ``retry_in_s``). False if the attempt had lost its lease."""
    await conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, message_id, outbox_id, webhook_id, "
        "event_type, attempt, status, response_code, latency_ms, response_body, error) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (message_id, attempt) DO UPDATE SET status = excluded.status, "
        "response_code = excluded.response_code, latency_ms = excluded.latency_ms, "
        "response_body = excluded.response_body, error = excluded.error",
        message["subscription_id"],
        message["id"],
        message["outbox_id"],
        message["webhook_id"],
        message["event_type"],
        message["attempts"],
        status,
        response_code,
        latency_ms,
        response_body,
        error,
    )
    new_status = "pending" if status == "retrying" else status
    result = await conn.execute(
        "UPDATE webhook_messages SET status = $3, lease_until = NULL, last_error = $4, "
        "next_attempt_at = CASE WHEN $5::float8 IS NULL THEN next_attempt_at "
        "ELSE now() + make_interval(secs => $5) END, "
        "enqueued_at = CASE WHEN $5::float8 IS NULL THEN enqueued_at "
        "ELSE now() + make_interval(secs => $5) END, "
        "finished_at = CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END "
        "WHERE id = $1 AND attempts = $2 AND status = 'delivering'",
        message["id"],
        message["attempts"],
        new_status,
        error,
        retry_in_s,
    )
    return result.split()[-1] == "1"


async def delete_finished_messages(conn: asyncpg.Connection, *, older_than_days: int) -> int:
    """Finished messages (and, by cascade, their attempts) and done outbox rows past retention."""
    result = await conn.execute(
        "DELETE FROM webhook_messages WHERE finished_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    await conn.execute(
        "DELETE FROM webhook_deliveries WHERE message_id IS NULL "
        "AND created_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    await conn.execute(
        "DELETE FROM outbox WHERE done_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(result.split()[-1])
